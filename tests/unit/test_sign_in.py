"""Sign-in with GitLab (OAuth 2 authorization code + PKCE) against the simulator's OAuth provider: the
round trip, what the browser holds, and every way to abuse it (open redirects, tampered state, wrong
verifier, replayed code, a cookie without a session, a form without its CSRF token)."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app.web.sessions import SESSION_COOKIE, SIGN_IN_COOKIE, safe_return_to
from scripts.harness import Simulator
from tests.conftest import bearer

CLIENT_ID, CLIENT_SECRET = "sim-registry-app", "gloas-sim-registry-secret"


@pytest.fixture
def app(make_app: Callable[..., Flask], simulator: Simulator) -> Flask:
    simulator.world.oauth_apps[CLIENT_ID]["redirect_uri"] = "http://localhost/-/auth/callback"
    return make_app(oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def set_cookies(response: Any) -> dict[str, str]:
    """Each Set-Cookie header of a response by cookie name (the whole header, attributes included)."""
    return {SimpleCookie(h).popitem()[0]: h for h in response.headers.getlist("Set-Cookie")}


def start(client: FlaskClient, return_to: str = "/") -> dict[str, list[str]]:
    """/-/auth/sign_in, then GitLab's authorize page; GitLab's redirect back as query parameters."""
    begun = client.get("/-/auth/sign_in", query_string={"return_to": return_to})
    assert begun.status_code == 302
    authorized = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10)
    assert authorized.status_code == 302
    back = urlsplit(authorized.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "http://localhost/-/auth/callback"
    return parse_qs(back.query)


def finish(client: FlaskClient, answer: dict[str, list[str]]) -> Any:
    return client.get("/-/auth/callback", query_string={k: v[0] for k, v in answer.items()})


def sign_in(client: FlaskClient, return_to: str = "/") -> Any:
    done = finish(client, start(client, return_to))
    assert done.status_code == 302, done.get_data(as_text=True)
    return done


def test_sign_in_round_trip(client: FlaskClient, simulator: Simulator) -> None:
    client.put("/ml/vision/-/data/dvc/files/md5/ab/cdef", data=b"twelve bytes", headers=bearer("developer"))
    landing = client.get("/").get_data(as_text=True)
    assert "Sign in with GitLab" in landing and "@dev" not in landing

    begun = client.get("/-/auth/sign_in", query_string={"return_to": "/ml/vision/-/data/"})
    authorize = urlsplit(begun.headers["Location"])
    query = parse_qs(authorize.query)
    assert authorize.path == "/oauth/authorize" and query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["scope"] == ["read_api"] and len(query["state"][0]) >= 40
    nonce_cookie = set_cookies(begun)[SIGN_IN_COOKIE]
    assert "HttpOnly" in nonce_cookie and "SameSite=Lax" in nonce_cookie and "Secure" not in nonce_cookie

    authorized = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10)
    done = finish(client, parse_qs(urlsplit(authorized.headers["Location"]).query))
    assert done.status_code == 302 and done.headers["Location"] == "/ml/vision/-/data/"
    session_cookie = set_cookies(done)[SESSION_COOKIE]
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie

    page = client.get("/")
    html = page.get_data(as_text=True)
    assert "Signed in as <strong>@dev</strong>" in html
    assert 'href="/ml/vision/-/data/">ml/vision</a>' in html  # a project of dev's with data
    assert "ml/open-data" not in html  # dev is a member, but it has no data here
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    access_tokens = [t for t, record in simulator.world.oauth_tokens.items() if "created_at" in record]
    for token in [*access_tokens, *simulator.world.refresh_tokens]:
        assert token not in html and token not in session_cookie  # GitLab's tokens stay server-side


def test_secure_cookies_on_an_https_public_url(make_app: Callable[..., Flask], simulator: Simulator) -> None:
    simulator.world.oauth_apps[CLIENT_ID]["redirect_uri"] = "https://data.example.com/-/auth/callback"
    app = make_app(
        oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET, public_url="https://data.example.com"
    )
    begun = app.test_client().get("/-/auth/sign_in")
    assert "Secure" in set_cookies(begun)[SIGN_IN_COOKIE]
    redirect_uri = parse_qs(urlsplit(begun.headers["Location"]).query)["redirect_uri"]
    assert redirect_uri == ["https://data.example.com/-/auth/callback"]


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/ok\r\nLocation: https://evil.example",
        "evil.example",
        "",
    ],
)
def test_return_to_never_leaves_the_registry(client: FlaskClient, target: str) -> None:
    assert safe_return_to(target) == "/"
    assert sign_in(client, target).headers["Location"] == "/"


def test_return_to_keeps_our_own_paths() -> None:
    assert safe_return_to("/ml/vision/-/data/?ref=v1#top") == "/ml/vision/-/data/?ref=v1#top"


def test_tampered_state_is_refused(client: FlaskClient) -> None:
    answer = start(client)
    answer["state"] = [answer["state"][0][:-2] + "xx"]
    refused = finish(client, answer)
    assert refused.status_code == 400 and "sign in again" in refused.get_data(as_text=True)
    assert SESSION_COOKIE not in set_cookies(refused)


def test_a_state_from_another_browser_is_refused(app: Flask) -> None:
    """Login CSRF: a callback URL made in the attacker's browser, opened in the victim's."""
    answer = start(app.test_client())
    victim = app.test_client()
    refused = finish(victim, answer)
    assert refused.status_code == 400 and SESSION_COOKIE not in set_cookies(refused)


def test_a_code_with_another_sign_ins_verifier_is_refused(client: FlaskClient, simulator: Simulator) -> None:
    """The code was issued for the first sign-in's PKCE challenge; the second sign-in's verifier does not
    match it, so GitLab refuses the exchange."""
    first = start(client)
    second = start(client)
    refused = finish(client, {"code": first["code"], "state": second["state"]})
    assert refused.status_code == 400
    assert "GitLab refused the sign-in (invalid_grant)" in refused.get_data(as_text=True)
    assert simulator.world.refresh_tokens == {}  # GitLab issued nothing


def test_a_replayed_callback_or_code_is_refused(client: FlaskClient) -> None:
    answer = start(client)
    assert finish(client, answer).status_code == 302
    assert finish(client, answer).status_code == 400  # the state is used up
    again = start(client)
    replayed = finish(client, {"code": answer["code"], "state": again["state"]})
    assert replayed.status_code == 400  # the code is used up at GitLab


def test_a_cookie_without_a_server_side_session_is_nobody(client: FlaskClient) -> None:
    client.set_cookie(SESSION_COOKIE, "made-up-session-value")
    assert "Signed in as" not in client.get("/").get_data(as_text=True)


def test_sign_out_needs_the_csrf_token(client: FlaskClient) -> None:
    sign_in(client)
    html = client.get("/").get_data(as_text=True)
    csrf = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = client.post("/-/auth/sign_out")
    assert refused.status_code == 403 and "CSRF" in refused.get_data(as_text=True)
    assert client.post("/-/auth/sign_out", data={"csrf_token": "x" * len(csrf)}).status_code == 403
    assert "Signed in as" in client.get("/").get_data(as_text=True)
    out = client.post("/-/auth/sign_out", data={"csrf_token": csrf})
    assert out.status_code == 302
    assert "Signed in as" not in client.get("/").get_data(as_text=True)


def test_signed_out_cookie_is_dead_even_if_kept(app: Flask) -> None:
    browser = app.test_client()
    cookie = set_cookies(sign_in(browser))[SESSION_COOKIE].split(";")[0].split("=", 1)[1]
    html = browser.get("/").get_data(as_text=True)
    csrf = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    browser.post("/-/auth/sign_out", data={"csrf_token": csrf})
    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE, cookie)
    assert "Signed in as" not in thief.get("/").get_data(as_text=True)


def test_an_expiring_access_token_is_refreshed_transparently(
    client: FlaskClient, simulator: Simulator
) -> None:
    simulator.world.oauth_lifetime = 30  # within the refresh margin: every view refreshes
    sign_in(client)
    before = simulator.world.calls["POST /oauth/token"]
    assert "Signed in as <strong>@dev</strong>" in client.get("/").get_data(as_text=True)
    assert simulator.world.calls["POST /oauth/token"] == before + 1
    simulator.world.refresh_tokens.clear()  # revoked in GitLab: the next refresh fails
    assert "Signed in as" not in client.get("/").get_data(as_text=True)


def test_gitlab_denying_the_sign_in_says_so(client: FlaskClient, simulator: Simulator) -> None:
    simulator.world.signed_in_user = None
    answer = start(client)
    assert answer["error"] == ["access_denied"]
    page = finish(client, answer)
    assert page.status_code == 400 and "GitLab did not sign you in (access_denied)" in page.get_data(
        as_text=True
    )


def test_without_an_oauth_application_the_page_says_how_to_enable_it(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    landing = client.get("/").get_data(as_text=True)
    assert "REGISTRY_OAUTH_CLIENT_ID" in landing and "/-/auth/callback" in landing
    assert client.get("/-/auth/sign_in").status_code == 404


def test_the_worker_forgets_expired_sessions(app: Flask, simulator: Simulator) -> None:
    from datetime import UTC, datetime, timedelta

    from app.jobs.scheduler import jobs
    from app.web.context import EXTENSION

    parts = app.extensions[EXTENSION]
    browser = app.test_client()
    sign_in(browser)
    start(browser)  # never finished: it left nothing behind but the browser's cookie
    job, _ = jobs(parts)["browser_sessions"]
    assert job() == 0  # nothing is old yet
    later = datetime.now(UTC) + timedelta(seconds=parts.settings.session_ttl + 1)
    parts.signin._clock = lambda: later
    assert job() == 1
    assert "Signed in as" not in browser.get("/").get_data(as_text=True)


def test_a_sign_in_left_for_more_than_ten_minutes_is_refused(app: Flask) -> None:
    from datetime import UTC, datetime, timedelta

    from app.web.context import EXTENSION

    browser = app.test_client()
    answer = start(browser)
    later = datetime.now(UTC) + timedelta(minutes=11)
    app.extensions[EXTENSION].signin._clock = lambda: later
    refused = finish(browser, answer)
    assert refused.status_code == 400 and "sign in again" in refused.get_data(as_text=True)


def test_a_forged_sign_in_cookie_is_refused(client: FlaskClient) -> None:
    answer = start(client)
    client.set_cookie(SIGN_IN_COOKIE, "eyJzIjoi" + answer["state"][0], path="/-/auth/")
    refused = finish(client, answer)
    assert refused.status_code == 400 and SESSION_COOKIE not in set_cookies(refused)


def database_bytes(url: str) -> int:
    """What the index database takes: its SQLite files (WAL included), or PostgreSQL's own count."""
    from pathlib import Path

    from sqlalchemy import create_engine, text

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    engine = create_engine(url)
    with engine.connect() as conn:
        size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    engine.dispose()
    return size


def test_anonymous_sign_ins_do_not_grow_the_database(client: FlaskClient, database_url: str) -> None:
    """Anyone may start a sign-in (it only sends them to GitLab): the sign-in in progress lives in the
    browser's cookie, so 3,000 of them, each with a long return path, leave the database as it was."""
    client.get("/")
    before = database_bytes(database_url)
    return_to = "/ml/vision/-/data/" + "d" * 1900
    for _ in range(3000):
        begun = client.get("/-/auth/sign_in", query_string={"return_to": return_to})
        assert begun.status_code == 302
    assert len(set_cookies(begun)[SIGN_IN_COOKIE]) < 4000  # what a browser keeps of a cookie
    grown = database_bytes(database_url) - before
    assert grown < 2 * 2**20, f"{grown} bytes"
    # and the sign-in still works, with the long return path
    done = finish(client, start(client, return_to))
    assert done.status_code == 302 and done.headers["Location"] == return_to


def test_pages_loading_together_at_refresh_time_refresh_once_and_stay_signed_in(
    app: Flask, simulator: Simulator
) -> None:
    """GitLab takes each refresh token once: requests that need a refresh at the same moment wait for the
    one that refreshes, instead of each trying with the same refresh token and signing the user out."""
    import threading

    simulator.world.oauth_lifetime = 30  # within the refresh margin: due at once
    browser = app.test_client()
    sign_in(browser)
    cookie = browser.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    simulator.world.oauth_lifetime = 7200  # what the refresh brings lasts
    simulator.world.refresh_delay = 0.3  # GitLab takes its time: every page is waiting at once
    before = simulator.world.calls["POST /oauth/token"]
    start_together = threading.Barrier(8)
    pages: list[str] = []

    def load_page() -> None:
        tab = app.test_client()
        tab.set_cookie(SESSION_COOKIE, cookie.value)
        start_together.wait()
        pages.append(tab.get("/").get_data(as_text=True))

    tabs = [threading.Thread(target=load_page) for _ in range(8)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    assert len(pages) == 8 and all("Signed in as <strong>@dev</strong>" in page for page in pages)
    assert simulator.world.calls["POST /oauth/token"] == before + 1
    assert "Signed in as <strong>@dev</strong>" in browser.get("/").get_data(as_text=True)
