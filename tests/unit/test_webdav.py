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


def mkcol(client: FlaskClient, path: str, role: str | None = "developer") -> int:
    headers = bearer(role) if role else {}
    return client.open(path, method="MKCOL", headers=headers).status_code


COLLECTION = {"collection": True, "length": "0", "etag": None}


def put(client: FlaskClient, path: str, body: bytes, role: str = "developer") -> int:
    return client.put(f"{BASE}/{path}", data=body, headers=bearer(role)).status_code


def ca(body: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(body).hexdigest()
    return f"files/md5/{md5[:2]}/{md5[2:]}{suffix}"


def test_a_missing_path_is_404_and_the_data_root_always_exists(client: FlaskClient) -> None:
    """Neither an object, nor a folder of objects, nor a collection made with MKCOL: 404 (webdav4's
    exists(), rclone copyto/moveto/touch and `dvc ls-url` of a mistyped folder rely on it)."""
    assert propfind(client, BASE)[0] == 404
    assert propfind(client, f"{BASE}/sub/folder", "0")[0] == 404
    assert propfind(client, "/ml/vision/-/data") == (
        207,
        {"/ml/vision/-/data/": {"collection": True, "length": "0", "etag": None}},
    )
    put(client, "a/b/c.txt", b"x")
    assert propfind(client, f"{BASE}/a", "0")[0] == 207  # a prefix of an object is a collection
    assert propfind(client, f"{BASE}/a/b/c.txt/d")[0] == 404
    assert propfind(client, f"{BASE}/a/b/c")[0] == 404  # a prefix of a name is not a folder


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


def test_projects_a_token_cannot_see_look_missing(client: FlaskClient) -> None:
    put(client, "x", b"x")
    assert propfind(client, "/other/secret/-/data/dav")[0] == 404
    assert propfind(client, "/no/such/project/-/data/dav")[0] == 404


def test_mkcol_makes_a_collection_that_lists_and_can_be_removed(client: FlaskClient) -> None:
    assert mkcol(client, f"{BASE}/") == 201
    assert mkcol(client, f"{BASE}/empty/") == 201
    assert mkcol(client, f"{BASE}/empty") == 201  # it exists: 201 again (DVC), never 405 or 204
    assert mkcol(client, f"{BASE}/empty/inner/") == 201
    assert propfind(client, f"{BASE}/empty", "0") == (207, {f"{BASE}/empty/": COLLECTION})
    assert propfind(client, f"{BASE}/") == (207, {f"{BASE}/": COLLECTION, f"{BASE}/empty/": COLLECTION})
    assert list(propfind(client, f"{BASE}/empty")[1]) == [f"{BASE}/empty/", f"{BASE}/empty/inner/"]
    # a Developer may remove an empty collection (no data goes), with the empty ones below it
    assert client.delete(f"{BASE}/empty/", headers=bearer("developer")).status_code == 204
    assert propfind(client, f"{BASE}/empty/inner")[0] == 404
    assert propfind(client, f"{BASE}/empty")[0] == 404
    assert client.delete(f"{BASE}/empty/", headers=bearer("maintainer")).status_code == 404


def test_a_collection_emptied_of_objects_stays_when_made_with_mkcol(client: FlaskClient) -> None:
    assert mkcol(client, f"{BASE}/") == 201
    assert mkcol(client, f"{BASE}/kept/") == 201
    put(client, "kept/file", b"1")
    assert client.delete(f"{BASE}/kept/file", headers=bearer("maintainer")).status_code == 204
    assert propfind(client, f"{BASE}/kept") == (207, {f"{BASE}/kept/": COLLECTION})
    put(client, "kept/sub/file", b"2")
    assert mkcol(client, f"{BASE}/kept/sub/deeper/") == 201
    assert client.delete(f"{BASE}/kept/", headers=bearer("maintainer")).status_code == 204
    assert propfind(client, f"{BASE}/kept")[0] == 404  # the objects and every collection below went


def test_mkcol_refusals(client: FlaskClient) -> None:
    put(client, "an-object", b"x")
    assert mkcol(client, f"{BASE}/an-object/") == 405
    assert mkcol(client, f"{BASE}/an-object/below/") == 409
    assert mkcol(client, f"{BASE}/missing/child/") == 409  # RFC 4918 9.3.1: the parent must exist
    with_body = client.open(f"{BASE}/bodied/", method="MKCOL", data=b"<x/>", headers=bearer("developer"))
    assert with_body.status_code == 415
    assert mkcol(client, f"{BASE}/a/../b/") == 400
    assert mkcol(client, f"{BASE}/x/", role="reporter") == 403
    assert mkcol(client, "/no/such/project/-/data/x/", role="developer") == 403
    assert propfind(client, f"{BASE}/bodied")[0] == 404 and propfind(client, f"{BASE}/x")[0] == 404


def test_dvc_first_folders_make_the_remote_base(client: FlaskClient) -> None:
    """DVC's webdav remote never creates its base URL (webdav4's makedirs stops at its root): MKCOL of
    `<base>/files/` and `<base>/runs/` make the missing base too."""
    assert mkcol(client, f"{BASE}/fresh/remote/files/") == 201
    assert mkcol(client, f"{BASE}/other/runs/") == 201
    assert propfind(client, f"{BASE}/fresh/remote", "0")[0] == 207
    assert list(propfind(client, f"{BASE}/fresh/remote")[1]) == [
        f"{BASE}/fresh/remote/",
        f"{BASE}/fresh/remote/files/",
    ]


def test_empty_dvc_fan_out_folders_are_not_listed_in_their_parent(client: FlaskClient) -> None:
    """DVC's webdav remote lists `files/md5` before each MKCOL of a fan-out folder (`files/md5/ab/`):
    listing those folders while empty made a fresh remote's first push parse a listing growing to 256
    entries, once per folder. They are made and kept as any collection (PROPFIND Depth 0, COPY into
    them, DELETE), and listed in `files/md5` once an object is in them; other collections are listed
    empty."""
    body = b"fan-out"
    md5 = hashlib.md5(body).hexdigest()
    fan_out = f"{BASE}/remote/files/md5/{md5[:2]}"
    for folder in ("remote/files", "remote/files/md5", md5[:2], f"{md5[:2]}x", "00"):
        path = folder if folder.startswith("remote") else f"remote/files/md5/{folder}"
        assert mkcol(client, f"{BASE}/{path}/") == 201
    assert list(propfind(client, f"{BASE}/remote/files/md5")[1]) == [
        f"{BASE}/remote/files/md5/",
        f"{BASE}/remote/files/md5/{md5[:2]}x/",
    ]
    assert propfind(client, fan_out, "0")[1] == {f"{fan_out}/": COLLECTION}
    assert put(client, f"remote/files/md5/{md5[:2]}/{md5[2:]}", body) == 201
    assert list(propfind(client, f"{BASE}/remote/files/md5")[1]) == [
        f"{BASE}/remote/files/md5/",
        f"{fan_out}/",
        f"{BASE}/remote/files/md5/{md5[:2]}x/",
    ]
    assert client.delete(f"{BASE}/remote/files/md5/00/", headers=bearer("developer")).status_code == 204
    assert propfind(client, f"{BASE}/remote/files/md5/00", "0")[0] == 404


def test_options_advertises_dav_class_1(client: FlaskClient) -> None:
    response = client.open(f"{BASE}/x", method="OPTIONS")
    assert response.headers["DAV"].startswith("1")
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
    assert propfind(client, f"{BASE}/runs/aa/k")[0] == 404
    md5 = hashlib.md5(child).hexdigest()
    # the prefix folder holding the child, but not the .dir (in prefix "df") that lists it
    assert md5[:2] != hashlib.md5(manifest).hexdigest()[:2]
    refused = client.delete(f"{BASE}/files/md5/{md5[:2]}", headers=maintainer)
    assert refused.status_code == 409 and ".dir" in refused.status
    assert client.delete(f"{BASE}/", headers=maintainer).status_code == 204  # the whole remote: fine
    assert propfind(client, BASE)[0] == 404
    assert client.delete(f"{BASE}/nothing/", headers=maintainer).status_code == 404
