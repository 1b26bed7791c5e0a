"""The client commands' one session (app/client/session.py) against real HTTP servers on 127.0.0.1: a
redirect to another origin (another port, another host name, http to https) is followed without any
credential header and without cookies; a redirect within the origin keeps the token; and import, doctor,
upload and download all talk through it."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from app.client import doctor, importer, transfer
from app.client.session import client_session, same_origin
from scripts.harness import serve_in_thread

CREDENTIALS = {
    "Authorization": "Bearer glpat-secret-token-00001",
    "Private-Token": "glpat-secret-token-00001",
    "Job-Token": "glcbt-secret-token-0002",
    "Deploy-Token": "gldt-secret-token-0003",
}
CREDENTIAL_NAMES = [*CREDENTIALS, "Cookie"]


@dataclass
class Recorder:
    """A server that records every request's host and headers; with `redirect_to` it answers 302 to that
    base + the same path and query (and sets a cookie), else 200 with a body naming its host."""

    redirect_to: str | None = None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        self.seen.append((request.host, request.full_path, dict(request.headers)))
        if request.path.startswith("/to/"):  # a redirect to the URL after /to/
            target = request.full_path.removeprefix("/to/").rstrip("?")
            response = Response(status=302, headers={"Location": target})
        elif self.redirect_to is not None:
            response = Response(status=302, headers={"Location": self.redirect_to + request.full_path})
        elif request.path.startswith("/api/"):
            response = Response('{"error": {"message": "nothing here"}}', 404, mimetype="application/json")
        else:
            response = Response(f"payload from {request.host}")
        response.set_cookie("_gitlab_session", "s3cret-session")
        return response(environ, start_response)

    def credentials(self, host: str) -> list[tuple[str, str]]:
        """(path, header) of every credential header that reached this server under that host name."""
        return [
            (path, name)
            for seen_host, path, headers in self.seen
            if seen_host == host
            for name in CREDENTIAL_NAMES
            if name in headers
        ]


@dataclass
class Served:
    app: Recorder
    server: BaseWSGIServer

    @property
    def port(self) -> int:
        return int(self.server.server_port)


@pytest.fixture
def serve() -> Iterator[Callable[[Recorder], Served]]:
    started: list[BaseWSGIServer] = []

    def start(app: Recorder) -> Served:
        started.append(serve_in_thread(app))
        return Served(app, started[-1])

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("https://g/a", "https://g:443/b?c", True),
        ("http://g:80/a", "http://G/b", True),
        ("http://g/a", "https://g/a", False),  # requests keeps Authorization here; an origin it is not
        ("https://g/a", "http://g/a", False),
        ("https://g/a", "https://g:8443/a", False),
        ("https://g/a", "https://g.evil/a", False),
    ],
)
def test_origins(one: str, other: str, same: bool) -> None:
    assert same_origin(one, other) is same


@pytest.mark.parametrize("other_host", ["127.0.0.1", "localhost"])
def test_a_redirect_to_another_origin_is_followed_without_any_credential(
    serve: Callable[[Recorder], Served], other_host: str
) -> None:
    """Another port, or the same port under another host name: the file still comes, the token does not."""
    gitlab = serve(Recorder())
    bucket = serve(Recorder()) if other_host == "127.0.0.1" else gitlab
    signed = f"http://{other_host}:{bucket.port}/bucket/ab/cdef?X-Amz-Signature=abc"
    with client_session() as session:
        session.get(f"http://127.0.0.1:{gitlab.port}/api/v4/user")  # GitLab sets a session cookie
        got = session.get(f"http://127.0.0.1:{gitlab.port}/to/{signed}", headers=CREDENTIALS)
    assert got.status_code == 200 and got.text == f"payload from {other_host}:{bucket.port}"
    assert bucket.app.credentials(f"{other_host}:{bucket.port}") == []
    assert any(path.startswith("/bucket/ab/cdef") for _, path, _ in bucket.app.seen)
    assert [name for _, name in gitlab.app.credentials(f"127.0.0.1:{gitlab.port}")] == list(CREDENTIALS)


def test_a_redirect_within_the_origin_keeps_the_token(serve: Callable[[Recorder], Served]) -> None:
    gitlab = serve(Recorder())
    base = f"http://127.0.0.1:{gitlab.port}"
    with client_session() as session:
        got = session.get(f"{base}/to/{base}/files/x", headers={"Private-Token": "glpat-t"})
    assert got.status_code == 200
    assert ("/files/x?", "Private-Token") in gitlab.app.credentials(f"127.0.0.1:{gitlab.port}")


def test_http_to_https_on_the_same_host_is_another_origin() -> None:
    """requests' own rule keeps Authorization from http://g to https://g; this session keeps nothing."""
    asked = requests.Request("GET", "http://g/api/v4/x", headers=CREDENTIALS).prepare()
    answer = requests.Response()
    answer.request, answer.status_code, answer.raw = asked, 301, io.BytesIO()
    follow = asked.copy()
    follow.url = "https://g/api/v4/x"
    with client_session() as session:
        session.rebuild_auth(follow, answer)
    assert not set(follow.headers) & set(CREDENTIAL_NAMES)


def test_no_cookie_is_kept(serve: Callable[[Recorder], Served]) -> None:
    gitlab = serve(Recorder())
    with client_session() as session:
        session.get(f"http://127.0.0.1:{gitlab.port}/api/v4/user")
        session.get(f"http://127.0.0.1:{gitlab.port}/api/v4/user")
        assert len(session.cookies) == 0
    assert all("Cookie" not in headers for _, _, headers in gitlab.app.seen)


def test_every_client_command_talks_through_it(serve: Callable[[Recorder], Served], tmp_path: Path) -> None:
    """Import, doctor, upload and download against an origin that sets a cookie and redirects everything
    to another port of the same host: they fail (nothing is there), and no credential, the cookie
    included, reaches the other origin."""
    elsewhere = serve(Recorder())
    other = f"127.0.0.1:{elsewhere.port}"
    named = serve(Recorder(redirect_to=f"http://{other}"))
    base = f"http://127.0.0.1:{named.port}"
    data = f"{base}/ml/vision/-/data/models/w.bin"
    bearer = {"Authorization": f"Bearer {CREDENTIALS['Private-Token']}"}
    file = tmp_path / "w.bin"
    file.write_bytes(b"weights")
    quiet = io.StringIO()
    said: list[str] = []

    codes = [
        doctor.diagnose(data, bearer, lambda _, text: said.append(text)),
        transfer.upload(file, data, bearer, out=quiet),
        transfer.download(data, tmp_path / "back.bin", bearer, out=quiet),
    ]
    for token in (CREDENTIALS["Private-Token"], CREDENTIALS["Job-Token"], CREDENTIALS["Deploy-Token"]):
        source = f"{base}/api/v4/projects/101/packages/generic/dvc"
        codes.append(
            importer.run(source, data, token=token, dest_token=None, jobs=1, dry_run=False, out=quiet)
        )
    assert elsewhere.app.credentials(other) == []
    assert codes == [1] * 6
    assert len(elsewhere.app.seen) >= 6  # every command was redirected there
    assert len(named.app.credentials(f"127.0.0.1:{named.port}")) >= 6  # the named origin did get them
    assert f"redirected to another origin, http://{other}: the credential was not sent there" in said
