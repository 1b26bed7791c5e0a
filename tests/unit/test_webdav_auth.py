"""WebDAV's answers to who asks: a Basic challenge for anonymous requests on projects that are not public
(missing ones alike, so nothing leaks) and for refused tokens on every method; 404 for a token that cannot
see the project; writes check the credential and the project before anything else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

CHALLENGE = 'Basic realm="GitLab Data Registry"'
METHODS = ["PROPFIND", "PROPPATCH", "MKCOL", "DELETE", "PUT"]
PATCH = (
    b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><a xmlns="urn:a">1</a></D:prop></D:set>'
    b"</D:propertyupdate>"
)


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    client = make_app().test_client()
    assert client.put("/ml/vision/-/data/dav/x", data=b"x", headers=bearer("developer")).status_code == 201
    return client


def send(
    client: FlaskClient, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    body = PATCH if method == "PROPPATCH" else (b"x" if method == "PUT" else b"")
    answer = client.open(path, method=method, data=body, headers=headers or {})
    return answer.status_code, answer.headers.get("WWW-Authenticate", "")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("project", ["ml/vision", "ml/inside", "no/such/project"])
def test_anonymous_requests_on_projects_that_are_not_public_are_challenged(
    client: FlaskClient, method: str, project: str
) -> None:
    """A private, an internal and a missing project answer alike: 401 with a Basic challenge (cadaver,
    davfs2 and curl --anyauth send credentials only then)."""
    assert send(client, method, f"/{project}/-/data/dav/x") == (401, CHALLENGE)


def test_anonymous_reads_of_a_public_project_need_no_credential(client: FlaskClient) -> None:
    assert send(client, "PROPFIND", "/ml/open-data/-/data")[0] == 207
    assert send(client, "PROPFIND", "/ml/open-data/-/data/missing")[0] == 404
    assert send(client, "MKCOL", "/ml/open-data/-/data/new/") == (401, CHALLENGE)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("token", ["revoked", "expired"])
def test_refused_tokens_are_challenged_on_every_method(client: FlaskClient, method: str, token: str) -> None:
    assert send(client, method, "/ml/vision/-/data/dav/x", bearer(token)) == (401, CHALLENGE)
    assert send(client, method, "/no/such/project/-/data/dav/x", bearer(token)) == (401, CHALLENGE)


def test_an_unknown_token_is_challenged(client: FlaskClient) -> None:
    unknown = {"Authorization": "Bearer glpat-nobody-knows-this-token"}
    assert send(client, "PROPFIND", "/ml/vision/-/data/dav", unknown) == (401, CHALLENGE)


def test_a_token_that_cannot_see_the_project_finds_nothing(client: FlaskClient) -> None:
    """hidden = missing for tokens: the same 404 for a project it may not see and one that is not there."""
    for project in ("other/secret", "no/such/project"):
        assert send(client, "PROPFIND", f"/{project}/-/data/dav", bearer("developer")) == (404, "")
        assert send(client, "MKCOL", f"/{project}/-/data/dav/", bearer("developer")) == (403, "")


def test_mkcol_checks_the_role_before_the_path(client: FlaskClient) -> None:
    assert send(client, "MKCOL", "/ml/vision/-/data/dav/x/", bearer("reporter"))[0] == 403  # not 405
    assert send(client, "MKCOL", "/ml/vision/-/data/dav/new/", bearer("reporter"))[0] == 403
    assert send(client, "PROPPATCH", "/ml/vision/-/data/dav/missing", bearer("reporter"))[0] == 403
