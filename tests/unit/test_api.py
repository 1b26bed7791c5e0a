"""The JSON API through the Flask app with the GitLab simulator; every operation of its OpenAPI document."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

API = "/api/v1/projects/101"


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    client = make_app(default_quota="1GiB").test_client()
    for i in range(25):
        body = f"object {i}".encode()
        md5 = hashlib.md5(body).hexdigest()
        client.put(
            f"/ml/vision/-/data/dvc/files/md5/{md5[:2]}/{md5[2:]}", data=body, headers=bearer("developer")
        )
    client.put("/ml/vision/-/data/reports/a report.txt", data=b"text", headers=bearer("developer"))
    return client


def test_project_info(client: FlaskClient) -> None:
    info = client.get(API, headers=bearer("reporter")).json
    assert info["id"] == 101 and info["path"] == "ml/vision"
    assert info["object_count"] == 26 and info["quota_bytes"] == 2**30
    assert info["used_bytes"] == sum(len(f"object {i}") for i in range(25)) + 4
    assert info["last_upload"] is not None


def test_listing_pages_through_everything_once(client: FlaskClient) -> None:
    seen, cursor = [], None
    while True:
        query = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/objects", query_string=query, headers=bearer("reporter")).json
        seen += [o["path"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 26 and seen == sorted(seen) and len(set(seen)) == 26


def test_listing_by_prefix_and_search(client: FlaskClient) -> None:
    page = client.get(f"{API}/objects", query_string={"prefix": "reports/"}, headers=bearer("reporter")).json
    assert [o["path"] for o in page["objects"]] == ["reports/a report.txt"]
    found = client.get(f"{API}/objects", query_string={"search": "port"}, headers=bearer("reporter")).json
    assert [o["path"] for o in found["objects"]] == ["reports/a report.txt"]
    assert found["objects"][0]["md5"] == hashlib.md5(b"text").hexdigest()


def test_batch_existence_agrees_with_head(client: FlaskClient) -> None:
    md5s = [hashlib.md5(f"object {i}".encode()).hexdigest() for i in range(40)]  # 25 exist
    paths = [f"dvc/files/md5/{m[:2]}/{m[2:]}" for m in md5s]
    answer = client.post(
        f"{API}/objects/exists", json={"paths": paths, "md5s": md5s}, headers=bearer("reporter")
    ).json
    for path, md5 in zip(paths, md5s, strict=True):
        head = client.head(f"/ml/vision/-/data/{path}", headers=bearer("reporter")).status_code
        assert answer["paths"][path] is (head == 200) is answer["md5s"][md5]
    assert sum(answer["paths"].values()) == 25


def test_batch_limits_and_validation(client: FlaskClient) -> None:
    too_many = client.post(
        f"{API}/objects/exists", json={"md5s": ["0" * 32] * 1001}, headers=bearer("reporter")
    )
    assert too_many.status_code == 400 and "md5s" in too_many.status
    bad = client.post(f"{API}/objects/exists", json={"md5s": ["nope"]}, headers=bearer("reporter"))
    assert bad.status_code == 400 and "not an md5" in bad.json["error"]["message"]
    unknown = client.post(f"{API}/objects/exists", json={"files": []}, headers=bearer("reporter"))
    assert unknown.status_code == 400
    assert (
        client.get(f"{API}/objects", query_string={"limit": 0}, headers=bearer("reporter")).status_code == 400
    )
    assert (
        client.get(f"{API}/objects", query_string={"cursor": "%%%"}, headers=bearer("reporter")).status_code
        == 400
    )


def test_download_and_delete(client: FlaskClient) -> None:
    got = client.get(
        f"{API}/objects/download", query_string={"path": "reports/a report.txt"}, headers=bearer("reporter")
    ).json
    assert got["size"] == 4 and got["md5"] == hashlib.md5(b"text").hexdigest()
    assert client.get(got["url"]).data == b"text"
    query = {"path": "reports/a report.txt"}
    assert client.delete(f"{API}/objects", query_string=query, headers=bearer("developer")).status_code == 403
    assert (
        client.delete(f"{API}/objects", query_string=query, headers=bearer("maintainer")).status_code == 204
    )
    assert (
        client.get(f"{API}/objects/download", query_string=query, headers=bearer("reporter")).status_code
        == 404
    )


def test_same_permissions_as_the_data_plane(client: FlaskClient) -> None:
    assert client.get(API, headers=bearer("outsider")).status_code == 404
    assert client.get(API).status_code == 404
    assert client.get("/api/v1/projects/102").status_code == 200  # public: anonymous reads


def test_openapi_document_lists_every_operation(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"] == "3.0.3"
    operations = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert operations == {
        ("/api/v1/projects/{project_id}", "get"),
        ("/api/v1/projects/{project_id}/objects", "get"),
        ("/api/v1/projects/{project_id}/objects", "delete"),
        ("/api/v1/projects/{project_id}/objects/exists", "post"),
        ("/api/v1/projects/{project_id}/objects/download", "get"),
        ("/api/v1/projects/{project_id}/uploads", "post"),
        ("/api/v1/projects/{project_id}/uploads/{session_id}/complete", "post"),
        ("/api/v1/projects/{project_id}/uploads/{session_id}", "delete"),
        ("/api/v1/admin/projects", "get"),
        ("/api/v1/admin/projects/{project_id}/quota", "get"),
        ("/api/v1/admin/projects/{project_id}/quota", "put"),
        ("/api/v1/projects/{project_id}/trash", "get"),
        ("/api/v1/projects/{project_id}/trash/restore", "post"),
        ("/api/v1/projects/{project_id}/trash/purge", "post"),
        ("/api/v1/whoami", "get"),
    }
    assert "ObjectPage" in spec["components"]["schemas"]


def test_docs_page_shows_every_operation_and_schema_from_the_document(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path, item in spec["paths"].items():
        for method in item:
            assert f'<span class="method {method}">{method.upper()}</span> <code>{path}</code>' in html
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    assert "at most 1000 items" in html and "matches ^[0-9a-f]{32}$" in html  # constraints, not just types
    assert '<link rel="stylesheet" href="/api/v1/docs/static/api_docs.css">' in html
    assert "<script" not in html and 'href="http' not in html  # nothing from elsewhere
    with client.get("/api/v1/docs/static/api_docs.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"


@pytest.mark.parametrize("order_by", ["path", "size", "created_at"])
@pytest.mark.parametrize("sort", ["asc", "desc"])
def test_sorted_listing_pages_through_everything_once(client: FlaskClient, order_by: str, sort: str) -> None:
    client.put("/ml/vision/-/data/big/one", data=b"x" * 500, headers=bearer("developer"))
    client.put("/ml/vision/-/data/big/two", data=b"x" * 500, headers=bearer("developer"))  # a tie on size
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        query = {"limit": 4, "order_by": order_by, "sort": sort, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/objects", query_string=query, headers=bearer("reporter"))
        assert page.status_code == 200, page.json
        seen += page.json["objects"]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    keys = [(o[order_by], o["path"]) for o in seen]
    assert keys == sorted(keys, reverse=sort == "desc") and len({o["path"] for o in seen}) == len(seen) == 28


def test_a_cursor_belongs_to_its_ordering(client: FlaskClient) -> None:
    query = {"limit": 2, "order_by": "size"}
    cursor = client.get(f"{API}/objects", query_string=query, headers=bearer("reporter")).json["next_cursor"]
    reused = client.get(
        f"{API}/objects", query_string={"cursor": cursor, "order_by": "path"}, headers=bearer("reporter")
    )
    assert reused.status_code == 400 and "cursor" in reused.json["error"]["message"]


def test_download_as_attachment(client: FlaskClient) -> None:
    query = {"path": "reports/a report.txt", "attachment": "true"}
    got = client.get(f"{API}/objects/download", query_string=query, headers=bearer("reporter")).json
    blob = client.get(got["url"])
    assert blob.data == b"text"
    assert blob.headers["Content-Disposition"] == (
        "attachment; filename=\"a report.txt\"; filename*=UTF-8''a%20report.txt"
    )
    plain = client.get(
        f"{API}/objects/download", query_string={"path": "reports/a report.txt"}, headers=bearer("reporter")
    ).json
    assert plain["url"] != got["url"] and "Content-Disposition" not in client.get(plain["url"]).headers


def test_a_project_by_its_url_encoded_path_like_gitlabs_api(client: FlaskClient) -> None:
    client.put("/ml/vision/-/data/dvc/a.bin", data=b"a", headers=bearer("developer"))
    by_id = client.get(API, headers=bearer("reporter"))
    by_path = client.get("/api/v1/projects/ml%2Fvision", headers=bearer("reporter"))
    assert by_path.status_code == 200 and by_path.json == by_id.json
    listed = client.get(
        "/api/v1/projects/ml%2Fvision/objects", query_string={"prefix": "dvc/a.b"}, headers=bearer("reporter")
    )
    assert [o["path"] for o in listed.json["objects"]] == ["dvc/a.bin"]
    missing = client.get("/api/v1/projects/ml%2Fnope", headers=bearer("reporter"))
    assert missing.status_code == 404 and "ml/nope" in missing.json["error"]["message"]
    assert (
        client.get("/api/v1/projects/ml/vision", headers=bearer("reporter")).status_code == 404
    )  # not encoded
