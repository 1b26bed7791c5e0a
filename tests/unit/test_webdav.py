"""The WebDAV subset on the data-plane URLs, through the Flask app with the GitLab simulator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

BASE = "/ml/vision/-/data/dav"
D = "{DAV:}"


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


def propfind(
    client: FlaskClient, path: str, depth: str | None = "1", role: str = "developer"
) -> tuple[int, dict]:
    headers = {**bearer(role), **({"Depth": depth} if depth is not None else {})}
    response = client.open(path, method="PROPFIND", headers=headers)
    if response.status_code != 207:
        return response.status_code, {}
    assert response.content_type == "application/xml; charset=utf-8"
    entries = {}
    for item in ElementTree.fromstring(response.data).iter(f"{D}response"):
        prop = item.find(f"{D}propstat/{D}prop")
        assert prop is not None
        entries[item.findtext(f"{D}href")] = {
            "collection": prop.find(f"{D}resourcetype/{D}collection") is not None,
            "length": prop.findtext(f"{D}getcontentlength"),
            "etag": prop.findtext(f"{D}getetag"),
        }
    return 207, entries


def put(client: FlaskClient, path: str, body: bytes, role: str = "developer") -> int:
    return client.put(f"{BASE}/{path}", data=body, headers=bearer(role)).status_code


def ca(body: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(body).hexdigest()
    return f"files/md5/{md5[:2]}/{md5[2:]}{suffix}"


def test_the_remote_base_exists_before_anything_is_pushed(client: FlaskClient) -> None:
    assert propfind(client, BASE) == (207, {f"{BASE}/": {"collection": True, "length": "0", "etag": None}})
    assert propfind(client, "/ml/vision/-/data")[0] == 207  # the project's data root too


def test_listing_has_the_collection_itself_and_its_children(client: FlaskClient) -> None:
    body = b"object"
    put(client, ca(body), body)
    put(client, "runs/ab/key/value", b"run")
    put(client, "name with space & ü.txt", b"x")
    assert put(client, "runs/<a> \"b\" 'c'", b"y") == 201  # markup in a name stays text
    status, entries = propfind(client, f"{BASE}/")
    assert status == 207
    assert propfind(client, f"{BASE}/runs")[1][f"{BASE}/runs/%3Ca%3E%20%22b%22%20%27c%27"]["length"] == "1"
    assert entries == {
        f"{BASE}/": {"collection": True, "length": "0", "etag": None},
        f"{BASE}/files/": {"collection": True, "length": "0", "etag": None},
        f"{BASE}/name%20with%20space%20%26%20%C3%BC.txt": {
            "collection": False,
            "length": "1",
            "etag": f'"{hashlib.md5(b"x").hexdigest()}"',
        },
        f"{BASE}/runs/": {"collection": True, "length": "0", "etag": None},
    }
    md5 = hashlib.md5(body).hexdigest()
    status, prefix = propfind(client, f"{BASE}/files/md5/{md5[:2]}")
    assert list(prefix) == [f"{BASE}/files/md5/{md5[:2]}/", f"{BASE}/{ca(body)}"]
    assert prefix[f"{BASE}/{ca(body)}"]["length"] == "6"


def test_an_object_answers_for_itself_with_or_without_depth(client: FlaskClient) -> None:
    put(client, ca(b"obj"), b"obj")
    for depth in ("1", "0", None):
        status, entries = propfind(client, f"{BASE}/{ca(b'obj')}", depth)
        assert status == 207 and list(entries) == [f"{BASE}/{ca(b'obj')}"]


def test_a_missing_content_addressed_object_is_404(client: FlaskClient) -> None:
    assert propfind(client, f"{BASE}/files/md5/aa/{'b' * 30}")[0] == 404
    assert propfind(client, f"{BASE}/files/md5/aa/{'b' * 30}.dir", None)[0] == 404


def test_depth_infinity_is_refused(client: FlaskClient) -> None:
    assert propfind(client, BASE, "infinity")[0] == 403


def test_projects_the_caller_cannot_read_look_missing(client: FlaskClient) -> None:
    assert propfind(client, "/other/secret/-/data/dav")[0] == 404
    assert propfind(client, "/no/such/project/-/data/dav")[0] == 404
    anonymous = client.open("/ml/vision/-/data/dav", method="PROPFIND", headers={"Depth": "1"})
    assert anonymous.status_code == 404


def test_mkcol_is_always_201_and_refusals_come_on_put(client: FlaskClient) -> None:
    """MKCOL creates nothing (collections are virtual); DVC shows a refusal's reason only on the PUT."""
    for role in ("reporter", "reporter", "expired"):
        mkcol = client.open(f"{BASE}/files/md5/ab/", method="MKCOL", headers=bearer(role))
        assert mkcol.status_code == 201
    assert client.open(f"{BASE}/a/../b/", method="MKCOL", headers=bearer("reporter")).status_code == 400
    assert put(client, "files/md5/ab/x", b"1", role="reporter") == 403
    expired = client.open(f"{BASE}/files/md5/ab/x", method="PUT", data=b"1", headers=bearer("expired"))
    assert expired.status == "401 GitLab token has expired"


def test_options_advertises_dav_class_1(client: FlaskClient) -> None:
    response = client.open(f"{BASE}/x", method="OPTIONS")
    assert response.headers["DAV"] == "1"
    assert "PROPFIND" in response.headers["Allow"] and "MKCOL" in response.headers["Allow"]


def test_deleting_a_collection(client: FlaskClient) -> None:
    child = b"child"
    manifest = json.dumps([{"md5": hashlib.md5(child).hexdigest(), "relpath": "c"}]).encode()
    put(client, ca(child), child)
    put(client, ca(manifest, ".dir"), manifest)
    put(client, "runs/aa/k/v", b"r")
    maintainer = bearer("maintainer")
    assert client.delete(f"{BASE}/runs/", headers=bearer("developer")).status_code == 403
    assert client.delete(f"{BASE}/runs/", headers=maintainer).status_code == 204
    assert propfind(client, f"{BASE}/runs/aa/k")[1] == {
        f"{BASE}/runs/aa/k/": {"collection": True, "length": "0", "etag": None}
    }
    md5 = hashlib.md5(child).hexdigest()
    # the prefix folder holding the child, but not the .dir (in prefix "df") that lists it
    assert md5[:2] != hashlib.md5(manifest).hexdigest()[:2]
    refused = client.delete(f"{BASE}/files/md5/{md5[:2]}", headers=maintainer)
    assert refused.status_code == 409 and ".dir" in refused.status
    assert client.delete(f"{BASE}/", headers=maintainer).status_code == 204  # the whole remote: fine
    assert propfind(client, BASE)[1] == {f"{BASE}/": {"collection": True, "length": "0", "etag": None}}
    assert client.delete(f"{BASE}/nothing/", headers=maintainer).status_code == 404
