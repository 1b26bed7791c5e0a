"""Browsers get pages, clients keep JSON: the one negotiation rule against the Accept headers real clients
send (captured from the real curl, requests, httpx and aiohttp), error pages with the JSON answer's status
line and headers, an object's page for a signed-in browser, the favicon."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import httpx
import pytest
import requests
from flask import Flask, request

from app.web.negotiation import prefers_html
from scripts.harness import Simulator, serve_in_thread
from tests.conftest import bearer
from tests.unit.test_project_pages import CLIENT_ID, CLIENT_SECRET, put, signed_in

# Chromium 156's Accept on a navigation (Firefox and Safari send the same without the image types), on an
# <img> or the favicon, and fetch()'s default: copied from Chromium's requests (the e2e tests load pages
# in the real Chromium).
CHROMIUM_NAVIGATION = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
FIREFOX_NAVIGATION = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHROMIUM_IMAGE = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FETCH_DEFAULT = "*/*"
BROWSER = {"Accept": CHROMIUM_NAVIGATION}
OBJECT = "/ml/vision/-/data/models/m.bin"


@pytest.fixture
def app(make_app: Callable[..., Flask], simulator: Simulator) -> Flask:
    simulator.world.oauth_apps[CLIENT_ID]["redirect_uri"] = "http://localhost/-/auth/callback"
    return make_app(oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET, download_mode="redirect")


@pytest.fixture(scope="module")
def real_client_accepts() -> Iterator[dict[str, str | None]]:
    """The Accept header each real client sends (None: none at all), as a server receives it."""
    seen: list[str | None] = []

    def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ.get("HTTP_ACCEPT"))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]

    server = serve_in_thread(echo)
    url = f"http://127.0.0.1:{server.server_port}/ml/vision/-/data/dvc/files/md5/ab/cdef"
    found: dict[str, str | None] = {}
    subprocess.run(["curl", "-s", "-o", "/dev/null", url], check=True, timeout=10)
    found["curl"] = seen[-1]
    requests.get(url, timeout=10)
    found["requests"] = seen[-1]
    httpx.get(url, timeout=10)  # DVC's webdav remote (webdav4)
    found["httpx (DVC webdav)"] = seen[-1]

    async def aiohttp_get() -> None:  # DVC's http remote (fsspec's HTTPFileSystem)
        async with aiohttp.ClientSession() as session, session.get(url) as answer:
            await answer.read()

    with ThreadPoolExecutor(1) as thread:  # its own loop: Playwright's may be running in this one
        thread.submit(asyncio.run, aiohttp_get()).result(timeout=10)
    found["aiohttp (DVC http)"] = seen[-1]
    yield found
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("client", ["curl", "requests", "httpx (DVC webdav)", "aiohttp (DVC http)"])
def test_real_clients_never_prefer_html(
    app: Flask, real_client_accepts: dict[str, str | None], client: str
) -> None:
    accept = real_client_accepts[client]
    assert accept == "*/*"  # what every one of them sends today; if that changes, so may the answer
    with app.test_request_context(OBJECT, headers={"Accept": accept}):
        assert not prefers_html_now()


def prefers_html_now() -> bool:
    return prefers_html(request)


@pytest.mark.parametrize(
    ("method", "path", "headers", "page"),
    [
        ("GET", OBJECT, {"Accept": CHROMIUM_NAVIGATION}, True),
        ("GET", OBJECT, {"Accept": FIREFOX_NAVIGATION}, True),
        ("GET", "/nowhere", {"Accept": CHROMIUM_NAVIGATION}, True),
        ("HEAD", OBJECT, {"Accept": CHROMIUM_NAVIGATION}, True),
        ("GET", OBJECT, {"Accept": FETCH_DEFAULT}, False),
        ("GET", "/favicon.ico", {"Accept": CHROMIUM_IMAGE}, False),
        ("GET", OBJECT, {}, False),
        ("GET", OBJECT, {"Accept": "application/json"}, False),
        ("GET", OBJECT, {"Accept": "application/json, text/html"}, False),  # a tie goes to JSON
        ("GET", OBJECT, {"Accept": "application/json, text/javascript, */*; q=0.01"}, False),  # jQuery
        ("GET", OBJECT, {"Accept": "text/html;q=0"}, False),
        ("GET", OBJECT, {"Accept": CHROMIUM_NAVIGATION, "Authorization": "Bearer glpat-x"}, False),
        ("GET", OBJECT, {"Accept": CHROMIUM_NAVIGATION, "Private-Token": "glpat-x"}, False),
        ("GET", OBJECT, {"Accept": CHROMIUM_NAVIGATION, "Job-Token": "x"}, False),
        ("GET", "/api/v1/projects/101", {"Accept": CHROMIUM_NAVIGATION}, False),
        ("PUT", OBJECT, {"Accept": "text/html"}, False),
        ("PROPFIND", OBJECT, {"Accept": "text/html"}, False),
        ("POST", OBJECT, {"Accept": "text/html", "Content-Type": "application/octet-stream"}, False),
        (
            "POST",
            "/-/auth/sign_out",
            {"Accept": CHROMIUM_NAVIGATION, "Content-Type": "application/x-www-form-urlencoded"},
            True,
        ),
    ],
)
def test_the_negotiation_rule(
    app: Flask, method: str, path: str, headers: dict[str, str], page: bool
) -> None:
    with app.test_request_context(path, method=method, headers=headers):
        assert prefers_html_now() is page


def test_an_unknown_route_is_a_page_for_a_browser_and_json_for_clients(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/ml/vision", headers=BROWSER)
    data = client.get("/ml/vision", headers={"Accept": "*/*"})
    assert page.status == data.status and page.status_code == 404  # the same status line
    assert page.mimetype == "text/html" and data.is_json
    html = page.get_data(as_text=True)
    assert "There is no page at /ml/vision" in html and 'href="/ml/vision/-/data/"' in html
    assert "HTTP 404 Not Found" in html and page.headers["Content-Security-Policy"].startswith("default-src")
    assert data.get_json()["error"]["code"] == "not_found"


def test_an_object_url_in_a_signed_in_browser_is_the_objects_page(app: Flask, simulator: Simulator) -> None:
    put(app.test_client(), "ml/vision", "models/m.bin", b"weights")
    dev = signed_in(app, simulator, "dev")
    page = dev.get(OBJECT, headers=BROWSER)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<h1 class="object-name">m.bin</h1>' in html and "<code>models/m.bin</code>" in html
    assert "7 B" in html and "63f4f1e9b725370f459720575cd5f953" in html and "UTC</time>" in html
    download = "/-/ui/projects/101/download?path=models/m.bin"
    assert f'href="{download}" download="m.bin"' in html.replace("%2F", "/")
    signed = dev.get(download)
    with dev.get(signed.headers["Location"]) as blob:  # the local backend's signed URL
        assert blob.get_data() == b"weights"
        assert blob.headers["Content-Disposition"].startswith('attachment; filename="m.bin"')
    by_id = dev.get("/-/projects/101/data/models/m.bin", headers=BROWSER)
    assert by_id.status_code == 200 and 'href="/ml/vision/-/data/models/"' in by_id.get_data(as_text=True)
    folder = dev.get("/ml/vision/-/data/models", headers=BROWSER)  # a folder without its slash
    assert folder.status_code == 302 and folder.headers["Location"] == "/ml/vision/-/data/models/"
    missing = dev.get("/ml/vision/-/data/models/nope.bin", headers=BROWSER)
    assert missing.status_code == 404 and "Object not found: models/nope.bin" in missing.get_data(
        as_text=True
    )

    # the same URL and cookie, asked as DVC, curl or a script would: exactly as before
    for accept in ("*/*", "application/json", ""):
        as_client = dev.get(OBJECT, headers={"Accept": accept})
        assert as_client.status_code == 404 and as_client.is_json  # the cookie is no credential
    with_token = dev.get(OBJECT, headers={**bearer("reporter"), **BROWSER})
    assert with_token.status_code == 302  # a token means a client: the download, as before


def test_anonymous_browsers_are_asked_to_sign_in_and_clients_get_json(app: Flask) -> None:
    client = app.test_client()
    put(client, "ml/vision", "models/m.bin", b"weights")
    page = client.get(OBJECT, headers=BROWSER)
    data = client.get(OBJECT, headers={"Accept": "*/*"})
    assert page.status == data.status and page.status_code == 404  # a private project stays hidden
    html = page.get_data(as_text=True)
    assert "Sign in with GitLab to see this page: ml/vision is not public, or it does not exist." in html
    assert f'class="button primary" href="/-/auth/sign_in?return_to={OBJECT}"' in html
    assert data.get_json()["error"]["code"] == "project_not_found"
    put(client, "ml/open-data", "cat.png", b"meow")  # public: anyone sees the object's page
    public = client.get("/ml/open-data/-/data/cat.png", headers=BROWSER)
    assert public.status_code == 200 and "cat.png" in public.get_data(as_text=True)


def test_an_expired_sign_in_offers_to_sign_in_again(app: Flask, simulator: Simulator) -> None:
    put(app.test_client(), "ml/vision", "models/m.bin", b"weights")
    simulator.world.oauth_lifetime = 30  # GitLab's token is due for refresh at once
    dev = signed_in(app, simulator, "dev")
    simulator.world.refresh_tokens.clear()  # GitLab no longer refreshes it: the session ends
    page = dev.get(OBJECT, headers=BROWSER)
    assert page.status_code == 404
    html = page.get_data(as_text=True)
    assert "Your sign-in has expired" in html and "Sign in again to see this page." in html
    assert f'href="/-/auth/sign_in?return_to={OBJECT}"' in html
    assert dev.get(OBJECT, headers={"Accept": "*/*"}).is_json


def test_gitlab_down_is_a_503_page_with_its_retry_after(app: Flask, simulator: Simulator) -> None:
    simulator.world.fault = 503
    client = app.test_client()
    page = client.get("/ml/open-data/-/data/cat.png", headers=BROWSER)
    data = client.get("/ml/open-data/-/data/cat.png", headers={"Accept": "*/*"})
    assert page.status == data.status and page.status_code == 503
    assert page.headers["Retry-After"] == data.headers["Retry-After"]
    html = page.get_data(as_text=True)
    assert '<h1 id="message-title">GitLab is unreachable</h1>' in html
    assert f"Try again in {page.headers['Retry-After']} seconds." in html and "HTTP 503" in html
    assert data.get_json()["error"]["code"] == "gitlab_unavailable"


def test_a_refused_sign_in_is_a_401_page_that_never_prompts_for_a_password(
    app: Flask, simulator: Simulator
) -> None:
    """A Basic challenge makes a browser prompt for a password (which is no GitLab token): a page's 401
    challenges Bearer and offers sign-in; clients keep Basic, which DVC and WebDAV mounts wait for."""
    put(app.test_client(), "ml/vision", "models/m.bin", b"weights")
    dev = signed_in(app, simulator, "dev")
    simulator.world.oauth_tokens.clear()  # GitLab revoked the session's token (the user did, say)
    page = dev.get(OBJECT, headers=BROWSER)
    assert page.status_code == 401 and page.mimetype == "text/html"
    assert page.headers["WWW-Authenticate"] == 'Bearer realm="GitLab Data Registry"'
    html = page.get_data(as_text=True)
    assert "GitLab refused your sign-in" in html and f'href="/-/auth/sign_in?return_to={OBJECT}"' in html
    client = app.test_client().get(OBJECT, headers={"Authorization": "Bearer glpat-revoked-token-000008"})
    assert client.status_code == 401 and client.is_json
    assert client.headers["WWW-Authenticate"].startswith("Basic")


def test_head_gets_the_status_and_no_body(app: Flask) -> None:
    got = app.test_client().head("/nowhere", headers=BROWSER)
    assert got.status_code == 404 and got.get_data() == b"" and got.mimetype == "text/html"


def test_the_favicon_is_an_icon(app: Flask) -> None:
    icon = app.test_client().get("/favicon.ico", headers={"Accept": CHROMIUM_IMAGE})
    assert icon.status_code == 200 and icon.mimetype == "image/x-icon"
    assert icon.get_data()[:4] == b"\x00\x00\x01\x00" and b"PNG" in icon.get_data()[:40]
    html = app.test_client().get("/", headers=BROWSER).get_data(as_text=True)
    assert '<link rel="icon" href="/-/ui/favicon.ico">' in html
