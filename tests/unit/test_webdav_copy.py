"""WebDAV COPY and MOVE (RFC 4918 9.8, 9.9) through the Flask app with the GitLab simulator: each rule of
Destination, Overwrite and Depth, the permissions, the trash, content addresses and the quota."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

DATA = "/ml/vision/-/data"
API = "/api/v1/projects/101"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def put(client: FlaskClient, path: str, body: bytes, role: str = "developer") -> int:
    return client.put(f"{DATA}/{path}", data=body, headers=bearer(role)).status_code


def get(client: FlaskClient, path: str) -> bytes | None:
    answer = client.get(f"{DATA}/{path}", headers={**bearer("developer"), "User-Agent": "litmus"})
    if answer.status_code == 404:
        return None
    if answer.status_code == 302:  # the local backend's signed URL is served by the app itself
        answer = client.get(answer.headers["Location"])
    assert answer.status_code == 200, answer.status
    return answer.data


def dav(
    client: FlaskClient,
    method: str,
    source: str,
    dest: str | None,
    role: str = "developer",
    **headers: str,
) -> tuple[int, str]:
    sent = {**bearer(role), **{k.replace("_", "-"): v for k, v in headers.items()}}
    if dest is not None:
        sent["Destination"] = dest if dest.startswith(("http", "/")) else f"{DATA}/{dest}"
    answer = client.open(f"{DATA}/{source}", method=method, headers=sent)
    return answer.status_code, answer.status


def trash(client: FlaskClient) -> list[str]:
    return sorted(o["path"] for o in client.get(f"{API}/trash", headers=bearer("reporter")).json["objects"])


def test_copy_makes_a_new_version_at_the_destination(client: FlaskClient, app: Flask) -> None:
    assert put(client, "a/src.txt", b"source bytes") == 201
    assert dav(client, "COPY", "a/src.txt", "a/copy.txt") == (201, "201 CREATED")
    assert get(client, "a/copy.txt") == b"source bytes"
    assert get(client, "a/src.txt") == b"source bytes"
    index = app.extensions["data_registry"].index
    src, copy = index.get(101, "a/src.txt"), index.get(101, "a/copy.txt")
    assert copy.md5 == src.md5 and copy.size == src.size
    assert copy.key != src.key and copy.key.startswith("versions/101/")  # a key of its own (DESIGN 2)
    info = client.get(API, headers=bearer("reporter")).json
    assert (info["used_bytes"], info["object_count"]) == (24, 2)  # the copy counts


def test_destination_as_an_absolute_url_and_by_project_id(client: FlaskClient) -> None:
    put(client, "src", b"x")
    assert dav(client, "COPY", "src", f"http://localhost{DATA}/by-url")[0] == 201
    assert dav(client, "COPY", "src", "/-/projects/101/data/by-id")[0] == 201
    assert dav(client, "COPY", "src", f"{DATA}/with%20space%20%C3%BC")[0] == 201
    assert get(client, "by-url") == get(client, "by-id") == get(client, "with space ü") == b"x"


@pytest.mark.parametrize(
    "dest",
    [
        "http://elsewhere.example/ml/vision/-/data/x",  # another server
        "/ml/other/-/data/x",  # another project of this registry
        "/api/v1/projects/101",  # not the data plane
    ],
)
def test_a_destination_elsewhere_is_refused_with_403(client: FlaskClient, dest: str) -> None:
    put(client, "src", b"x")
    status, line = dav(client, "COPY", "src", dest)
    assert status == 403 and ("another" in line or "data-plane" in line or "one project" in line)


def test_bad_headers_are_400(client: FlaskClient) -> None:
    put(client, "src", b"x")
    assert dav(client, "COPY", "src", None)[0] == 400  # no Destination
    assert dav(client, "COPY", "src", "dst", Overwrite="maybe")[0] == 400
    assert dav(client, "COPY", "src", "dst", Depth="1")[0] == 400
    assert dav(client, "MOVE", "src", "dst", Depth="0", role="maintainer")[0] == 400
    assert dav(client, "COPY", "src", "a/../b")[0] == 400  # the path rules hold for a destination


def test_overwrite_f_on_an_existing_destination_is_412(client: FlaskClient) -> None:
    put(client, "src", b"new")
    put(client, "dst", b"old")
    assert dav(client, "COPY", "src", "dst", Overwrite="F")[0] == 412
    assert get(client, "dst") == b"old"
    assert dav(client, "COPY", "src", "dst", Overwrite="T")[0] == 204
    assert get(client, "dst") == b"new"


def test_a_replaced_destination_goes_to_the_trash(client: FlaskClient) -> None:
    put(client, "src", b"new")
    put(client, "dst", b"old version")
    assert dav(client, "COPY", "src", "dst")[0] == 204
    assert trash(client) == ["dst"]


def test_source_equal_to_destination_is_403(client: FlaskClient) -> None:
    put(client, "src", b"x")
    assert dav(client, "COPY", "src", "src")[0] == 403
    assert dav(client, "COPY", "src/", f"{DATA}/src")[0] == 403


def test_a_missing_source_is_404(client: FlaskClient) -> None:
    assert dav(client, "COPY", "nothing", "dst")[0] == 404


def test_a_missing_parent_collection_is_409(client: FlaskClient) -> None:
    put(client, "src", b"x")
    assert dav(client, "COPY", "src", "no/such/dst")[0] == 409
    put(client, "file", b"f")
    assert dav(client, "COPY", "src", "file/dst")[0] == 409  # the parent is an object
    assert client.open(f"{DATA}/made", method="MKCOL", headers=bearer("developer")).status_code == 201
    assert dav(client, "COPY", "src", "made/dst")[0] == 201  # a collection MKCOL made
    put(client, "folder/inner", b"i")
    assert dav(client, "COPY", "src", "folder/dst")[0] == 201  # a folder of objects


def test_copy_of_a_collection_copies_everything_under_it(client: FlaskClient) -> None:
    for name in ("c/one", "c/sub/two", "c/sub/deeper/three"):
        put(client, name, name.encode())
    assert client.open(f"{DATA}/c/empty", method="MKCOL", headers=bearer("developer")).status_code == 201
    assert dav(client, "COPY", "c/", "d/")[0] == 201
    for name in ("one", "sub/two", "sub/deeper/three"):
        assert get(client, f"d/{name}") == f"c/{name}".encode()
    found = client.open(f"{DATA}/d/empty", method="PROPFIND", headers={**bearer("developer"), "Depth": "0"})
    assert found.status_code == 207  # the empty collection came along


def test_copy_depth_0_of_a_collection_makes_only_the_collection(client: FlaskClient) -> None:
    put(client, "c/one", b"1")
    assert dav(client, "COPY", "c", "shallow", Depth="0")[0] == 201
    assert get(client, "shallow/one") is None
    found = client.open(f"{DATA}/shallow", method="PROPFIND", headers={**bearer("developer"), "Depth": "0"})
    assert found.status_code == 207


def test_copy_into_itself_is_refused(client: FlaskClient) -> None:
    put(client, "c/one", b"1")
    assert dav(client, "COPY", "c", "c/inside")[0] == 403


def test_overwriting_a_collection_deletes_it_first(client: FlaskClient) -> None:
    put(client, "src", b"file")
    put(client, "coll/old", b"o")
    assert dav(client, "COPY", "src", "coll", role="developer")[0] == 403  # deleting needs Maintainer
    assert dav(client, "COPY", "src", "coll", role="maintainer")[0] == 204
    assert get(client, "coll") == b"file"
    assert get(client, "coll/old") is None
    assert trash(client) == ["coll/old"]


def test_a_content_address_destination_must_match_the_md5(client: FlaskClient) -> None:
    body = b"dataset file"
    md5 = hashlib.md5(body).hexdigest()
    put(client, "plain.bin", body)
    wrong = "dvc/files/md5/00/" + "0" * 30
    status, line = dav(client, "COPY", "plain.bin", wrong)
    assert status == 409 and md5 in line
    right = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
    for folder in ("dvc", "dvc/files", "dvc/files/md5", f"dvc/files/md5/{md5[:2]}"):
        assert client.open(f"{DATA}/{folder}", method="MKCOL", headers=bearer("developer")).status_code == 201
    assert dav(client, "COPY", "plain.bin", right)[0] == 201
    assert get(client, right) == body


def test_the_quota_counts_a_copy(make_app: Callable[..., Flask]) -> None:
    client = make_app(default_quota="1KiB").test_client()
    assert put(client, "big", b"x" * 600) == 201
    status, line = dav(client, "COPY", "big", "copy")
    assert status == 413 and "Quota exceeded" in line
    assert get(client, "copy") is None
    assert put(client, "c/part", b"y" * 300) == 201
    assert dav(client, "COPY", "c", "c2")[0] == 413  # a collection's copy is checked as a whole


def test_reporter_may_not_copy(client: FlaskClient) -> None:
    put(client, "src", b"x")
    assert dav(client, "COPY", "src", "dst", role="reporter")[0] == 403


def test_move_needs_delete_and_says_why(client: FlaskClient) -> None:
    put(client, "src", b"x")
    status, line = dav(client, "MOVE", "src", "dst", role="developer")
    assert status == 403 and "MOVE deletes its source" in line
    assert get(client, "src") == b"x" and get(client, "dst") is None  # nothing copied


def test_move_renames_without_the_trash(client: FlaskClient) -> None:
    put(client, "src", b"moved bytes")
    assert dav(client, "MOVE", "src", "dst", role="maintainer") == (201, "201 CREATED")
    assert get(client, "src") is None
    assert get(client, "dst") == b"moved bytes"
    assert trash(client) == []  # its bytes live on at the destination
    info = client.get(API, headers=bearer("reporter")).json
    assert (info["used_bytes"], info["object_count"], info["trash_bytes"]) == (11, 1, 0)


def test_move_over_an_existing_object(client: FlaskClient) -> None:
    put(client, "src", b"new")
    put(client, "dst", b"old")
    assert dav(client, "MOVE", "src", "dst", role="maintainer", Overwrite="F")[0] == 412
    assert get(client, "src") == b"new"
    assert dav(client, "MOVE", "src", "dst", role="maintainer")[0] == 204
    assert get(client, "dst") == b"new" and get(client, "src") is None
    assert trash(client) == ["dst"]  # the replaced version, as a PUT's


def test_move_of_a_collection(client: FlaskClient) -> None:
    put(client, "m/a", b"a")
    put(client, "m/sub/b", b"b")
    assert dav(client, "MOVE", "m", "n", role="maintainer")[0] == 201
    assert get(client, "n/a") == b"a" and get(client, "n/sub/b") == b"b"
    assert get(client, "m/a") is None
    assert client.open(f"{DATA}/m", method="PROPFIND", headers=bearer("maintainer")).status_code == 404


def test_dead_properties_go_with_a_copy(client: FlaskClient) -> None:
    put(client, "src", b"x")
    body = (
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">'
        b"<D:set><D:prop><Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"
    )
    assert (
        client.open(f"{DATA}/src", method="PROPPATCH", data=body, headers=bearer("developer")).status_code
        == 207
    )
    assert dav(client, "COPY", "src", "dst")[0] == 201
    ask = (
        b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:z">'
        b"<D:prop><Z:colour/></D:prop></D:propfind>"
    )
    found = client.open(
        f"{DATA}/dst", method="PROPFIND", data=ask, headers={**bearer("developer"), "Depth": "0"}
    )
    assert b"blue" in found.data
