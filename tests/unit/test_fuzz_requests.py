"""Every header, query string, path and cookie the app reads, fuzzed through the data plane, WebDAV, the
API, the hooks, sign-in and the browser pages (credentials in every form, Range, If-*, Depth, Destination,
X-Request-Id, percent-encoded invalid UTF-8, overlong UTF-8, NUL, RTL and zero-width characters, very long
values); and the bugs the fuzzing found, each pinned by a test of its own."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, unquote_to_bytes, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from app.web.sessions import SIGN_IN_COOKIE
from scripts.harness import Simulator
from tests.conftest import TOKENS, bearer
from tests.hostile import HOOK_SECRET, check_answer, edge_text, fuzzing, leaks

CLIENT_ID, CLIENT_SECRET = "sim-registry-app", "gloas-sim-registry-secret"
TOKEN = TOKENS["maintainer"]
MALFORMED = "Malformed GitLab token"
TOO_LONG = "glpat-made-up-" + "q" * 4986  # past the 4,096 characters a token may have
CSRF = "(the session's CSRF token)"
# (method, path template: {p} is a fuzzed path part, the query parameters the view reads, browser?)
ROUTES: list[tuple[str, str, list[str], bool]] = [
    ("GET", "/ml/vision/-/data/{p}", [], False),
    ("HEAD", "/ml/vision/-/data/{p}", [], False),
    ("PUT", "/ml/vision/-/data/fuzz/{p}", ["overwrite"], False),
    ("DELETE", "/ml/vision/-/data/fuzz/{p}", [], False),
    ("PROPFIND", "/ml/vision/-/data/{p}", [], False),
    ("MKCOL", "/ml/vision/-/data/fuzz/{p}", [], False),
    ("OPTIONS", "/ml/vision/-/data/{p}", [], False),
    ("GET", "/-/projects/101/data/{p}", [], False),
    ("GET", "/{p}/-/data/x", [], False),
    ("GET", "/ml/vision/-/data/{p}/", ["view", "ref", "dataset", "dir", "offset", "q", "after"], True),
    ("GET", "/api/v1/projects/{p}", [], False),
    ("GET", "/api/v1/projects/101/objects", ["prefix", "search", "limit", "order_by", "cursor"], False),
    ("GET", "/api/v1/projects/101/trash", ["prefix", "limit", "cursor"], False),
    ("GET", "/api/v1/projects/101/objects/download", ["path", "attachment"], False),
    ("DELETE", "/api/v1/projects/101/objects", ["path"], False),
    ("DELETE", "/api/v1/projects/101/uploads/{p}", [], False),
    ("GET", "/api/v1/admin/projects", ["limit"], False),
    ("GET", "/api/v1/admin/projects/{p}/quota", [], False),
    ("GET", "/api/v1/whoami", ["project"], False),
    ("GET", "/-/auth/sign_in", ["return_to"], True),
    ("GET", "/-/auth/callback", ["state", "code", "error"], True),
    ("POST", "/-/auth/sign_out", [], True),
    ("POST", "/-/ui/projects/101/trash/restore", [], True),
    ("POST", "/-/ui/projects/101/delete", [], True),
    ("GET", "/-/ui/projects/101/download", ["path", "name"], True),
    ("POST", "/-/hooks/gitlab", [], False),
    ("GET", "/-/blobs/{p}", [], False),
    ("GET", "/", [], True),
]
HEADERS = [
    "Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Range",
    "Depth",
    "Destination",
    "Overwrite",
    "Content-Type",
    "X-Request-Id",
    "X-Forwarded-For",
    "Accept",
    "User-Agent",
    "Cookie",
    "X-Gitlab-Token",
    "Idempotency-Key",
    "X-Gitlab-Event-UUID",
    "Webhook-Id",
    "Webhook-Timestamp",
    "Webhook-Signature",
]
# invalid, overlong and surrogate UTF-8, percent-encoded; NUL; dot segments and slashes; a raw byte
RAW_SEQUENCES = ["%ff", "%c0%af", "%c3%28", "%ed%a0%80", "%f4%90%80%80", "%00", "%2e%2e", "%2f", "%25"]
RAW_SEQUENCES += ["\xff"]


@pytest.fixture
def app(make_app: Callable[..., Flask], simulator: Simulator) -> Flask:
    simulator.world.oauth_apps[CLIENT_ID]["redirect_uri"] = "http://localhost/-/auth/callback"
    return make_app(oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET, webhook_secret=HOOK_SECRET)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def wire(text: str) -> str:
    """Text as its UTF-8 bytes travel (lone surrogates too), in the latin-1 string WSGI hands over."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def one_line(text: str) -> str:
    """What the test client lets into a header (the raw-socket fuzzer sends line breaks too)."""
    return "".join("?" if len(f"a{c}a".splitlines()) > 1 else c for c in text)


def percent(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="/")


@st.composite
def credentials(draw: st.DrawFn) -> tuple[dict[str, str], list[str]]:
    """A credential header in one of its forms, well-formed or not, and the secret it carries."""
    junk = draw(edge_text())
    secret = draw(st.sampled_from([TOKEN, one_line(wire(junk)), TOKEN + one_line(wire(junk)), TOO_LONG]))
    password = junk or TOKEN
    basic = base64.b64encode(f"{draw(edge_text())}:{password}".encode("utf-8", "surrogatepass")).decode()
    header, value, carried = draw(
        st.sampled_from(
            [
                ("Authorization", f"Bearer {secret}", secret),
                ("Authorization", f"Basic {basic}", password),
                ("Authorization", f"Basic {one_line(wire(junk))}", junk),
                ("Authorization", one_line(wire(junk)), junk),
                ("Private-Token", secret, secret),
                ("Job-Token", secret, secret),
                ("Deploy-Token", secret, secret),
                ("", "", ""),
            ]
        )
    )
    # what must never show: our tokens (tests/hostile.py checks those anyway) and a made-up one
    return ({header: value} if header else {}), [carried] if TOKEN in carried or TOO_LONG in carried else []


@st.composite
def fuzzed_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A route with a hostile path part and query, a credential, one hostile header, a form for a page."""
    method, template, params, browser = draw(st.sampled_from(ROUTES))
    part = draw(edge_text().map(percent) | st.sampled_from(RAW_SEQUENCES) | st.just("x"))
    raw_path = template.format(p=part)
    names = st.sampled_from(params) | edge_text().map(percent) if params else edge_text().map(percent)
    values = edge_text().map(percent) | st.sampled_from(RAW_SEQUENCES)
    query = "&".join(f"{k}={v}" for k, v in draw(st.dictionaries(names, values, max_size=3)).items())
    headers, carried = draw(credentials())
    headers[draw(st.sampled_from(HEADERS))] = one_line(wire(draw(edge_text())))
    if browser and draw(st.booleans()):
        headers["Accept"] = "text/html"
    form = {
        "csrf_token": draw(st.just(CSRF) | edge_text()),
        "path": draw(edge_text()),
        "folder": draw(edge_text()),
    }
    return {
        "method": method,
        "path": raw_path,
        "query": query,
        "headers": headers,
        "carried": carried,
        "form": form if "/-/ui/" in template or "sign_out" in template else None,
        "signed_in": browser and draw(st.booleans()),
    }


def open_raw(client: FlaskClient, method: str, raw_path: str, query: str, **kwargs: Any) -> Any:
    """A request whose path and query string are these characters (bytes, as WSGI's latin-1) exactly,
    the path percent-decoded as a server does (the test client would encode both itself)."""
    path_info = unquote_to_bytes(raw_path.encode("latin-1")).decode("latin-1")
    uri = f"{raw_path}?{query}" if query else raw_path
    environ = {"PATH_INFO": path_info, "QUERY_STRING": query, "RAW_URI": uri, "REQUEST_URI": uri}
    return client.open("/", method=method, environ_overrides=environ, **kwargs)


@fuzzing(examples=250)
@given(case=fuzzed_requests(), address=st.integers(1, 250))
def test_fuzzed_requests(
    client: FlaskClient,
    signed_in: tuple[FlaskClient, str],
    caplog: pytest.LogCaptureFixture,
    case: dict[str, Any],
    address: int,
) -> None:
    """No 5xx, the error envelope, no credential echoed in an answer or written to the log; browser
    pages and forms signed in too."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    browser, csrf = signed_in
    form, headers = case["form"], dict(case["headers"])
    if form is not None:  # as a browser sends it: UTF-8, percent-encoded (a lone surrogate as its bytes)
        ours = csrf if "sign_out" not in case["path"] else "not-it"  # the browser stays signed in
        fields = {k: (ours if v == CSRF else v).encode("utf-8", "surrogatepass") for k, v in form.items()}
        form = urlencode(fields).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = open_raw(
        browser if case["signed_in"] else client,
        case["method"],
        case["path"],
        case["query"],
        headers=headers,
        data=form or (b'{"event_name": "push"}' if case["method"] in ("PUT", "POST") else None),
        environ_base={"REMOTE_ADDR": f"10.9.0.{address}"},
    )
    what = f"{case['method']} {case['path']}?{case['query']} {case['headers']}"[:400]
    reason = response.status.partition(" ")[2]
    check_answer(
        response.status_code, reason, response.get_data(), response.headers, sent=case["carried"], what=what
    )
    leaks(caplog.text, case["carried"], what)
    assert "Traceback" not in caplog.text, caplog.text[-2000:]


@pytest.fixture
def signed_in(app: Flask) -> tuple[FlaskClient, str]:
    """A browser signed in (through the simulator's OAuth), and its session's CSRF token."""
    browser = app.test_client()
    return browser, sign_in(browser)


def test_a_basic_password_beyond_latin1_is_401(client: FlaskClient) -> None:
    """It was sent on to GitLab in a header http.client cannot encode: a 500."""
    basic = base64.b64encode("someone:glpat-é\u202e\u200b".encode()).decode()
    response = client.get("/api/v1/projects/101", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 401 and MALFORMED in response.status, response.status


def test_basic_credentials_beyond_ascii_are_401(client: FlaskClient) -> None:
    """base64 of bytes that are no ASCII (UTF-8 on the wire) made b64decode raise a ValueError of its own,
    not binascii.Error: a 500."""
    for value in (wire("é"), "\xff\xfe", wire("\u202e") + "QQ=="):
        response = client.get("/api/v1/projects/101", headers={"Authorization": f"Basic {value}"})
        assert response.status_code == 401 and "Malformed HTTP Basic" in response.status, response.status


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Authorization", "Bearer \xff\xfe"),
        ("Authorization", "Bearer a\x00b"),
        ("Authorization", "Bearer " + wire("glpat-é")),
        ("Authorization", "Bearer " + "x" * 5000),
        ("Private-Token", "glpat-\x01"),
        ("Job-Token", wire("\u202e")),
        ("Deploy-Token", "x" * 5000),
        ("Authorization", "Basic " + base64.b64encode(b"gitlab-ci-token:tok en").decode()),
    ],
)
def test_a_malformed_token_is_refused_without_asking_gitlab(
    client: FlaskClient, simulator: Simulator, header: str, value: str
) -> None:
    """No GitLab token has such characters or such a length: refused here, not sent to GitLab (whose nginx
    answers a header line past 8 KiB with a 400 the registry would report as GitLab's outage)."""
    before = simulator.world.total_calls()
    response = client.get("/api/v1/projects/101", headers={header: value})
    assert response.status_code == 401 and MALFORMED in response.status, response.status
    assert simulator.world.total_calls() == before


def cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("order_by", "made"),
    [
        ("path", cursor("path", "asc", None, "\ud800")),
        ("size", cursor("size", "asc", 10**30, "a")),
        ("size", cursor("size", "asc", 2**63, "a")),
        ("size", cursor("size", "asc", -1, "a")),
        ("size", cursor("size", "asc", True, "a")),
    ],
)
def test_a_cursor_holds_what_the_index_can(client: FlaskClient, order_by: str, made: str) -> None:
    """A crafted cursor with a lone surrogate or a size past a BIGINT reached the database: a 500."""
    for listing in ("objects", "trash"):
        response = client.get(
            f"/api/v1/projects/101/{listing}",
            query_string={"cursor": made, "order_by": order_by},
            headers=bearer("maintainer"),
        )
        assert response.status_code == 400 and "cursor" in response.status, response.status


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/projects/" + "9" * 5000,
        "/api/v1/projects/" + "9" * 5000 + "/objects",
        f"/api/v1/projects/{2**63}",
        "/api/v1/projects/0",
        f"/api/v1/admin/projects/{2**63}/quota",
        f"/api/v1/admin/projects/{10**30}/quota",
        f"/-/projects/{2**63}/data/x",
        f"/-/ui/projects/{10**30}/download?path=x",
    ],
)
def test_an_id_no_project_can_have_matches_no_route(client: FlaskClient, url: str) -> None:
    """Digits past what int() parses (4,300) or a BIGINT holds were a 500 (ValueError, OverflowError)."""
    path, _, query = url.partition("?")
    response = client.get(path, query_string=query, headers=bearer("admin"))
    assert response.status_code == 404, response.status


@pytest.mark.parametrize("project", ["9" * 30, "0", str(2**63), "/"])
def test_whoami_refuses_an_id_no_project_can_have(client: FlaskClient, project: str) -> None:
    response = client.get("/api/v1/whoami", query_string={"project": project}, headers=bearer("maintainer"))
    assert response.status_code == 400 and "project" in response.status, response.status


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/projects/101/objects", "prefix=\xff"),  # a raw byte: werkzeug failed to decode it
        ("/api/v1/whoami", "project=\xc3"),
        ("/-/auth/sign_in", "return_to=/\xff"),
        ("/-/health", "x=\xfe"),
        ("/api/v1/projects/101/objects", "prefix=%ff"),  # became U+FFFD: another prefix
        ("/api/v1/projects/101/objects/download", "path=a%c0%af"),
        ("/ml/vision/-/data/", "view=files&q=a%00b"),  # a NUL reached PostgreSQL: a 500 there
    ],
)
def test_a_query_string_is_utf8_text(client: FlaskClient, path: str, query: str) -> None:
    response = open_raw(client, "GET", path, query, headers=bearer("maintainer"))
    assert response.status_code == 400 and "query string" in response.status, response.status


def test_sign_in_state_beyond_ascii_is_a_page_not_a_500(client: FlaskClient) -> None:
    """hmac.compare_digest raises TypeError for str with non-ASCII characters."""
    begun = client.get("/-/auth/sign_in")
    assert begun.status_code == 302 and client.get_cookie(SIGN_IN_COOKIE, path="/-/auth/") is not None
    for state in ("é", "\u202e", "\ufffd"):
        response = client.get("/-/auth/callback", query_string={"state": state, "code": "c"})
        assert response.status_code == 400 and "sign in again" in response.get_data(as_text=True)


def sign_in(client: FlaskClient) -> str:
    """Signed in through the simulator's OAuth; the session's CSRF token."""
    begun = client.get("/-/auth/sign_in", query_string={"return_to": "/"})
    authorized = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10)
    answer = parse_qs(urlsplit(authorized.headers["Location"]).query)
    done = client.get("/-/auth/callback", query_string={k: v[0] for k, v in answer.items()})
    assert done.status_code == 302, done.get_data(as_text=True)
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_a_csrf_token_beyond_ascii_is_refused(client: FlaskClient) -> None:
    """The same TypeError behind every form: sign-out, restore, delete."""
    assert sign_in(client)
    for path in ("/-/ui/projects/101/trash/restore", "/-/ui/projects/101/delete", "/-/auth/sign_out"):
        for token in ("é", "\ufeff", "\u200b"):
            response = client.post(path, data={"csrf_token": token, "path": "x"})
            assert response.status_code == 403, (path, response.status)
