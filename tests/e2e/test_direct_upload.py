"""Direct upload sessions end to end: a 100 MiB file goes from the client straight to the bucket
(SeaweedFS presigned parts, a GCS signed resumable session; the app's own signed URL on local disk),
then `complete` verifies and indexes it. The registry under gunicorn, GitLab simulated."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
import requests

from scripts.harness import RegistryServer
from tests.conftest import TOKENS
from tests.storage.goog4 import public_key_of, start_resumable

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {TOKENS['developer']}"}
SIZE = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(SIZE)


def open_session(registry: RegistryServer, **body: Any) -> dict[str, Any]:
    answer = requests.post(f"{registry.url}/api/v1/projects/101/uploads", json=body, headers=AUTH, timeout=60)
    assert answer.status_code == 201, answer.text
    session: dict[str, Any] = answer.json()
    return session


def send(
    registry: RegistryServer, session: dict[str, Any], data: bytes, request: pytest.FixtureRequest
) -> None:
    """What a client does with the session: only the signed URLs, never a credential."""
    if session["kind"] == "gcs_resumable":
        key = public_key_of(request.getfixturevalue("service_account_file"))
        session_uri = start_resumable(session["url"], session["headers"], key)
        assert requests.put(session_uri, data=data, timeout=300).status_code in (200, 201)
        return
    for part in session["parts"]:
        url = part["url"] if part["url"].startswith("http") else registry.url + part["url"]
        chunk = memoryview(data)[part["offset"] : part["offset"] + part["size"]]
        answer = requests.put(url, data=chunk, timeout=300)
        assert answer.status_code == 200, answer.text


def complete(registry: RegistryServer, session: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{registry.url}/api/v1/projects/101/uploads/{session['id']}/complete", headers=AUTH, timeout=300
    )


def test_a_100_mib_file_goes_straight_to_the_bucket(
    registry: RegistryServer, payload: bytes, request: pytest.FixtureRequest
) -> None:
    md5 = hashlib.md5(payload).hexdigest()
    session = open_session(registry, path="models/weights.bin", size=SIZE, md5=md5)
    cloud = not registry.env["REGISTRY_STORAGE_URL"].startswith("file://")
    if session["kind"] == "parts" and cloud:
        assert len(session["parts"]) == 13 and session["part_size"] == 8 * 1024 * 1024
    send(registry, session, payload, request)
    done = complete(registry, session)
    assert done.status_code == 201, done.text
    stored = done.json()["object"]
    assert (stored["path"], stored["size"], stored["md5"]) == ("models/weights.bin", SIZE, md5)
    url = f"{registry.url}/ml/vision/-/data/models/weights.bin"
    head = requests.head(url, headers=AUTH, timeout=30)
    assert head.headers["X-Checksum-MD5"] == md5
    got = requests.get(url, headers=AUTH, timeout=300)
    assert hashlib.md5(got.content).hexdigest() == md5
    (stored_key,) = registry.stored_keys("versions/101/")  # not a content address: a key of its own
    assert stored_key.endswith("/models/weights.bin") and registry.stored_keys("projects/101/") == []
    assert registry.stored_keys("uploads/") == []
    if cloud:  # no byte of the file passed through the app, either way
        assert "/-/blobs/" not in registry.log_text()


def test_a_wrong_md5_is_rejected_at_complete_and_leaves_nothing(
    registry: RegistryServer, payload: bytes, request: pytest.FixtureRequest
) -> None:
    data = payload[: 20 * 1024 * 1024 + 5]
    session = open_session(
        registry, path="models/corrupt.bin", size=len(data), md5=hashlib.md5(b"x").hexdigest()
    )
    send(registry, session, data, request)
    refused = complete(registry, session)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "checksum_mismatch"
    assert "Checksum mismatch" in refused.reason
    assert registry.stored_keys("uploads/") == []
    stored = registry.stored_keys("projects/101/") + registry.stored_keys("versions/101/")
    assert not any(key.endswith("/models/corrupt.bin") for key in stored)
    head = requests.head(f"{registry.url}/ml/vision/-/data/models/corrupt.bin", headers=AUTH, timeout=30)
    assert head.status_code == 404


@pytest.fixture(scope="module")
def registry(registry_on_each_backend: RegistryServer) -> RegistryServer:
    return registry_on_each_backend


def test_a_dir_manifest_through_a_direct_session_is_checked_and_served_byte_identical(
    registry: RegistryServer, request: pytest.FixtureRequest
) -> None:
    """`complete` reads a `.dir` to check that every file it lists is here: it used to read the upload's
    temporary key after the backend had moved the bytes away (local, GCS), so every such session failed."""
    files = {f"f{i}.csv": os.urandom(100 + i) for i in range(3)}
    entries = []
    for name, body in files.items():
        md5 = hashlib.md5(body).hexdigest()
        put = requests.put(
            f"{registry.url}/ml/vision/-/data/dvc/files/md5/{md5[:2]}/{md5[2:]}", data=body, headers=AUTH
        )
        assert put.status_code in (200, 201), put.text
        entries.append({"md5": md5, "relpath": name})
    manifest = json.dumps(entries).encode()
    md5 = hashlib.md5(manifest).hexdigest()
    path = f"dvc/files/md5/{md5[:2]}/{md5[2:]}.dir"
    session = open_session(registry, path=path, size=len(manifest), md5=md5)
    send(registry, session, manifest, request)
    done = complete(registry, session)
    assert done.status_code == 201, done.text
    got = requests.get(f"{registry.url}/ml/vision/-/data/{path}", headers=AUTH, timeout=60)
    assert got.status_code == 200 and got.content == manifest
    entries.append({"md5": "0" * 32, "relpath": "missing.csv"})  # lists a file that is not here: refused
    manifest = json.dumps(entries).encode()
    md5 = hashlib.md5(manifest).hexdigest()
    session = open_session(registry, path=f"dvc/files/md5/{md5[:2]}/{md5[2:]}.dir", size=len(manifest))
    send(registry, session, manifest, request)
    refused = complete(registry, session)
    assert refused.status_code == 409 and "not uploaded" in refused.json()["error"]["message"]
