"""The data plane through the Flask app (test client) with the GitLab simulator as GitLab."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.harness import Simulator
from tests.conftest import TOKENS, bearer

BASE = "/ml/vision/-/data/dvc"


def ca_path(body: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(body).hexdigest()
    return f"{BASE}/files/md5/{md5[:2]}/{md5[2:]}{suffix}"


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(download_mode="redirect").test_client()  # the redirect semantics


def stored_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name not in {".secret_key"} and not p.name.startswith("registry.db")
    )


def test_upload_then_head_get_and_blob(client: FlaskClient) -> None:
    body = os.urandom(3000)
    path = ca_path(body)
    created = client.post(path, data=body, headers=bearer("developer"))
    assert created.status_code == 201
    again = client.put(path, data=body, headers=bearer("developer"))
    assert again.status_code == 200

    head = client.head(path, headers=bearer("reporter"))
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "3000"
    assert head.headers["X-Checksum-MD5"] == hashlib.md5(body).hexdigest()
    assert head.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    get = client.get(path, headers=bearer("reporter"))
    assert get.status_code == 302
    assert get.headers["X-Object-Size"] == "3000"
    assert get.headers["X-Checksum-MD5"] == hashlib.md5(body).hexdigest()
    blob = client.get(get.headers["Location"])  # no credential: the URL itself is the permission
    assert blob.status_code == 200 and blob.data == body
    part = client.get(get.headers["Location"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == body[100:200]
    assert part.headers["Content-Range"] == "bytes 100-199/3000"


def test_tampered_blob_url_is_refused(client: FlaskClient) -> None:
    body = b"x" * 10
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    url = client.get(ca_path(body), headers=bearer("developer")).headers["Location"]
    token = url.rsplit("/", 1)[1]
    forged = url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert client.get(forged).status_code == 403


def test_expired_blob_url_is_refused(make_app: Callable[..., Flask]) -> None:
    app = make_app(signed_url_ttl=10, download_mode="redirect")
    client = app.test_client()
    body = b"expiring"
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    storage = app.extensions["data_registry"].storage
    signed = storage.sign_download(f"projects/101/{ca_path(body)[len('/ml/vision/-/data/') :]}", ttl=-1)
    response = client.get(signed.url)
    assert response.status_code == 403
    assert response.status == "403 Signed URL expired"


def test_missing_object_is_404_for_head_and_get(client: FlaskClient) -> None:
    assert client.head(f"{BASE}/files/md5/aa/{'b' * 30}", headers=bearer("reporter")).status_code == 404
    assert client.get(f"{BASE}/files/md5", headers=bearer("reporter")).status_code == 404


def test_md5_mismatch_is_rejected_and_nothing_is_kept(client: FlaskClient, tmp_path: Path) -> None:
    path = f"{BASE}/files/md5/00/{'0' * 30}"
    response = client.post(path, data=b"not that content", headers=bearer("developer"))
    assert response.status_code == 400
    assert response.status.startswith("400 Checksum mismatch")
    assert response.json["error"]["code"] == "checksum_mismatch"
    assert client.head(path, headers=bearer("developer")).status_code == 404
    assert stored_files(tmp_path / "storage") == []


def test_reason_phrase_and_body_carry_the_message(client: FlaskClient) -> None:
    response = client.put(f"{BASE}/x", data=b"1", headers=bearer("reporter"))
    assert response.status == "403 Developer role required to write to ml/vision"
    assert response.json == {
        "error": {
            "code": "permission_denied",
            "message": "Developer role required to write to ml/vision",
        }
    }


@pytest.mark.parametrize(
    ("role", "reason"),
    [("expired", "401 GitLab token has expired"), ("revoked", "401 GitLab token has been revoked")],
)
def test_expired_and_revoked_tokens_say_so(client: FlaskClient, role: str, reason: str) -> None:
    for headers in (bearer(role), {"PRIVATE-TOKEN": TOKENS[role]}):
        response = client.get(f"{BASE}/x", headers=headers)
        assert response.status == reason


def test_a_put_replaces_a_different_object_and_overwrite_is_still_accepted(client: FlaskClient) -> None:
    path = f"{BASE}/reports/metrics.json"
    assert client.put(path, data=b"v1", headers=bearer("developer")).status_code == 201
    assert client.put(path, data=b"v1", headers=bearer("developer")).status_code == 200
    replaced = client.put(path, data=b"v2", headers=bearer("developer"))  # was 409 "add ?overwrite=true"
    assert replaced.status_code == 200 and replaced.json["md5"] == hashlib.md5(b"v2").hexdigest()
    again = client.put(path + "?overwrite=true", data=b"v3", headers=bearer("developer"))
    assert again.status_code == 200
    head = client.head(path, headers=bearer("developer"))
    assert head.headers["X-Checksum-MD5"] == hashlib.md5(b"v3").hexdigest()


def test_delete_needs_maintainer_and_protects_dir_manifests(client: FlaskClient) -> None:
    child = b"child file"
    manifest = json.dumps([{"md5": hashlib.md5(child).hexdigest(), "relpath": "a.txt"}]).encode()
    dev, maint = bearer("developer"), bearer("maintainer")
    client.put(ca_path(child), data=child, headers=dev)
    client.put(ca_path(manifest, ".dir"), data=manifest, headers=dev)

    assert client.delete(ca_path(child), headers=dev).status_code == 403
    refused = client.delete(ca_path(child), headers=maint)
    assert refused.status_code == 409 and ".dir" in refused.status
    assert client.delete(ca_path(manifest, ".dir"), headers=maint).status_code == 204
    assert client.delete(ca_path(child), headers=maint).status_code == 204
    assert client.head(ca_path(child), headers=maint).status_code == 404


def test_project_by_id_and_by_path_are_the_same_objects(client: FlaskClient) -> None:
    body = b"same"
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    by_id = ca_path(body).replace("/ml/vision/-/data/", "/-/projects/101/data/")
    assert client.head(by_id, headers=bearer("reporter")).status_code == 200


def test_other_projects_are_invisible(client: FlaskClient) -> None:
    response = client.get("/other/secret/-/data/x", headers=bearer("developer"))
    assert response.status_code == 404
    by_id = client.put("/-/projects/105/data/x", data=b"1", headers=bearer("developer"))
    assert by_id.status == "403 Project project 105 does not exist or you cannot write to it"
    missing = client.put("/-/projects/999/data/x", data=b"1", headers=bearer("developer"))
    assert missing.status == "403 Project project 999 does not exist or you cannot write to it"
    typo = client.put("/ml/visoin/-/data/x", data=b"1", headers=bearer("developer"))
    assert typo.status == "403 Project ml/visoin does not exist or you cannot write to it"
    assert client.put("/ml/visoin/-/data/x", data=b"1").status_code == 401  # anonymous: sign in first


def test_anonymous_reads_public_but_cannot_write(client: FlaskClient) -> None:
    body = b"open data"
    path = ca_path(body).replace("/ml/vision/", "/ml/open-data/")
    client.put(path, data=body, headers=bearer("developer"))
    assert client.head(path).status_code == 200
    assert client.put(path, data=body).status_code == 401
    private = client.get(ca_path(body))
    assert private.status_code == 404 and "needs a GitLab token" in private.status


def test_archived_project_is_read_only(client: FlaskClient) -> None:
    response = client.put("/ml/old/-/data/x", data=b"1", headers=bearer("maintainer"))
    assert response.status == "403 Project ml/old is archived and read-only"


def test_credentials_in_every_accepted_form(client: FlaskClient) -> None:
    body = b"auth forms"
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    basic = base64.b64encode(f"anyone:{TOKENS['reporter']}".encode()).decode()
    for headers in (
        {"PRIVATE-TOKEN": TOKENS["reporter"]},
        {"Authorization": f"Basic {basic}"},
        bearer("reporter"),
    ):
        assert client.head(ca_path(body), headers=headers).status_code == 200


def test_basic_auth_downloads_stream_instead_of_redirecting(client: FlaskClient) -> None:
    body = os.urandom(5000)
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    basic = base64.b64encode(f"u:{TOKENS['reporter']}".encode()).decode()
    aiohttp = {"Authorization": f"Basic {basic}", "User-Agent": "Python/3.11 aiohttp/3.14.5"}
    streamed = client.get(ca_path(body), headers=aiohttp)
    assert streamed.status_code == 200 and streamed.data == body
    ranged = client.get(ca_path(body), headers={**aiohttp, "Range": "bytes=-10"})
    assert ranged.status_code == 206 and ranged.data == body[-10:]
    curl = client.get(ca_path(body), headers={**aiohttp, "User-Agent": "curl/8.5.0"})
    assert curl.status_code == 302


def test_proxy_mode_streams(make_app: Callable[..., Flask]) -> None:
    client = make_app(download_mode="proxy").test_client()
    body = b"proxied bytes"
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    response = client.get(ca_path(body), headers=bearer("developer"))
    assert response.status_code == 200 and response.data == body


def test_auth_is_cached_per_credential(client: FlaskClient, simulator: Simulator) -> None:
    for i in range(50):
        body = f"object {i}".encode()
        client.put(ca_path(body), data=body, headers=bearer("developer"))
        client.head(ca_path(body), headers=bearer("developer"))
    assert simulator.world.total_calls() == 3


def test_gitlab_down_is_503_with_retry_after(client: FlaskClient, simulator: Simulator) -> None:
    simulator.world.fault = 502
    response = client.get(f"{BASE}/x", headers=bearer("developer"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    simulator.server.shutdown()
    simulator.server.server_close()
    unreachable = client.put(f"{BASE}/x", data=b"1", headers=bearer("maintainer"))
    assert unreachable.status_code == 503 and "unreachable" in unreachable.status


def test_dir_manifest_is_refused_until_its_files_are_uploaded(client: FlaskClient, tmp_path: Path) -> None:
    children = [b"first child", b"second child"]
    manifest = json.dumps(
        [{"md5": hashlib.md5(c).hexdigest(), "relpath": f"{i}.txt"} for i, c in enumerate(children)]
    ).encode()
    dev = bearer("developer")
    client.put(ca_path(children[0]), data=children[0], headers=dev)

    early = client.put(ca_path(manifest, ".dir"), data=manifest, headers=dev)
    assert early.status_code == 409
    assert early.status.startswith("409 1 of 2 files listed in this .dir are not uploaded")
    assert client.head(ca_path(manifest, ".dir"), headers=dev).status_code == 404

    client.put(ca_path(children[1]), data=children[1], headers=dev)
    assert client.put(ca_path(manifest, ".dir"), data=manifest, headers=dev).status_code == 201


def test_a_dir_that_is_not_a_manifest_is_refused(client: FlaskClient) -> None:
    body = b"not json at all"
    response = client.put(ca_path(body, ".dir"), data=body, headers=bearer("developer"))
    assert response.status == "400 Invalid .dir manifest: not JSON"
    assert client.head(ca_path(body, ".dir"), headers=bearer("developer")).status_code == 404


def test_a_signed_url_is_reused_for_half_its_life(client: FlaskClient) -> None:
    body, other = b"reused", b"another"
    client.put(ca_path(body), data=body, headers=bearer("developer"))
    client.put(ca_path(other), data=other, headers=bearer("developer"))
    first = client.get(ca_path(body), headers=bearer("developer")).headers["Location"]
    assert client.get(ca_path(body), headers=bearer("reporter")).headers["Location"] == first
    assert client.get(ca_path(other), headers=bearer("developer")).headers["Location"] != first
