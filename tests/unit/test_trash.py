"""The trash: deletes are restorable for the retention period, invisible meanwhile, in the quota;
a .dir comes back with its files or not at all; the worker purges after retention."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.model.projects import Project, Visibility
from app.trash import purge_trash
from tests.conftest import bearer, usage_of

API = "/api/v1/projects/101"
DATA = "/ml/vision/-/data"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(default_quota="1MiB")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def ca(prefix: str, body: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(body).hexdigest()
    return f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}{suffix}"


def push_dir(client: FlaskClient, prefix: str, files: list[bytes]) -> tuple[str, list[str]]:
    """The files, then the .dir manifest listing them, as DVC pushes a directory."""
    paths = [ca(prefix, body) for body in files]
    for path, body in zip(paths, files, strict=True):
        assert client.put(f"{DATA}/{path}", data=body, headers=bearer("developer")).status_code == 201
    manifest = json.dumps(
        [{"md5": hashlib.md5(b).hexdigest(), "relpath": f"f{i}"} for i, b in enumerate(files)]
    )
    manifest_path = ca(prefix, manifest.encode(), ".dir")
    put = client.put(f"{DATA}/{manifest_path}", data=manifest.encode(), headers=bearer("developer"))
    assert put.status_code == 201
    return manifest_path, paths


def storage_files(app: Flask) -> set[str]:
    root = Path(app.extensions["data_registry"].storage.root)
    return {str(p.relative_to(root)) for p in (root / "projects").rglob("*") if p.is_file()}


def test_a_collection_delete_goes_to_the_trash_and_comes_back(client: FlaskClient, app: Flask) -> None:
    manifest, files = push_dir(client, "dvc", [b"one", b"two", b"three"])
    index = app.extensions["data_registry"].index
    before, blobs = usage_of(index, 101), storage_files(app)
    assert client.delete(f"{DATA}/dvc", headers=bearer("maintainer")).status_code == 204  # dvc gc -c
    assert client.head(f"{DATA}/{files[0]}", headers=bearer("reporter")).status_code == 404
    assert client.get(f"{API}/objects", headers=bearer("reporter")).json["objects"] == []
    assert usage_of(index, 101) == (0, 0) and storage_files(app) == blobs  # bytes kept, quota freed
    info = client.get(API, headers=bearer("reporter")).json
    assert (info["trash_bytes"], info["trash_count"], info["used_bytes"]) == (before[0], 4, 0)
    trashed = client.get(f"{API}/trash", headers=bearer("reporter")).json["objects"]
    assert sorted(o["path"] for o in trashed) == sorted([manifest, *files])
    purge_at = datetime.fromisoformat(trashed[0]["purge_at"]) - datetime.fromisoformat(
        trashed[0]["trashed_at"]
    )
    assert purge_at == timedelta(days=7)
    assert (
        client.post(
            f"{API}/trash/restore", json={"paths": [manifest]}, headers=bearer("developer")
        ).status_code
        == 403
    )
    restored = client.post(f"{API}/trash/restore", json={"paths": [manifest]}, headers=bearer("maintainer"))
    assert restored.status_code == 200 and len(restored.json["restored"]) == 4  # the .dir brings its files
    assert usage_of(index, 101) == before
    got = client.get(f"{DATA}/{files[1]}", headers=bearer("reporter"), follow_redirects=True)
    assert got.data == b"two"
    assert client.get(f"{API}/trash", headers=bearer("reporter")).json["objects"] == []


def test_a_dir_whose_file_is_gone_for_good_is_not_restored(client: FlaskClient, app: Flask) -> None:
    manifest, files = push_dir(client, "dvc", [b"alpha", b"beta"])
    client.delete(f"{DATA}/dvc", headers=bearer("maintainer"))
    svc = app.extensions["data_registry"]
    with svc.index.writing(Project(101, "ml/vision", Visibility.PRIVATE)) as tx:  # as a purge would
        tx.remove(files[0])
    refused = client.post(f"{API}/trash/restore", json={"paths": [manifest]}, headers=bearer("maintainer"))
    assert refused.status_code == 409 and "gone for good" in refused.json["error"]["message"]
    assert client.head(f"{DATA}/{manifest}", headers=bearer("reporter")).status_code == 404  # all or nothing
    assert client.head(f"{DATA}/{files[1]}", headers=bearer("reporter")).status_code == 404
    missing = client.post(f"{API}/trash/restore", json={"paths": ["no/such"]}, headers=bearer("maintainer"))
    assert missing.status_code == 404


def test_a_new_upload_replaces_a_trashed_object(client: FlaskClient, app: Flask) -> None:
    body = b"pushed again after gc"
    path = ca("dvc", body)
    client.put(f"{DATA}/{path}", data=body, headers=bearer("developer"))
    client.delete(f"{DATA}/{path}", headers=bearer("maintainer"))
    again = client.put(f"{DATA}/{path}", data=body, headers=bearer("developer"))
    assert again.status_code == 201
    assert client.head(f"{DATA}/{path}", headers=bearer("reporter")).status_code == 200
    info = client.get(API, headers=bearer("reporter")).json
    assert (info["object_count"], info["trash_count"], info["trash_bytes"]) == (1, 0, 0)


def test_the_worker_purges_after_retention(client: FlaskClient, app: Flask) -> None:
    push_dir(client, "dvc", [b"x" * 1000, b"y" * 2000])
    client.delete(f"{DATA}/dvc", headers=bearer("maintainer"))
    svc = app.extensions["data_registry"]
    project = [Project(101, "ml/vision", Visibility.PRIVATE)]
    early = purge_trash(svc.index, svc.storage, project, retention=7 * 86400)
    assert early.objects == 0 and storage_files(app)
    later = datetime.now(UTC) + timedelta(days=8)
    report = purge_trash(svc.index, svc.storage, project, retention=7 * 86400, now=later)
    assert report.objects == 3 and storage_files(app) == set()
    info = client.get(API, headers=bearer("reporter")).json
    assert (info["trash_bytes"], info["trash_count"], info["used_bytes"]) == (0, 0, 0)


def test_no_retention_deletes_at_once(make_app: Callable[..., Flask]) -> None:
    app = make_app(trash_retention="0")
    client = app.test_client()
    client.put(f"{DATA}/a.bin", data=b"bytes", headers=bearer("developer"))
    assert client.delete(f"{DATA}/a.bin", headers=bearer("maintainer")).status_code == 204
    assert storage_files(app) == set()
    assert client.get(f"{API}/trash", headers=bearer("reporter")).json["objects"] == []


def test_the_trash_counts_toward_the_quota_and_a_maintainer_can_empty_it(
    client: FlaskClient, app: Flask
) -> None:
    """Upload/delete cycles used to hold 5.4 MB in a 1 MB quota (the trash lay outside it). Now live and
    trashed bytes together stay within it; the 413 says how much is trash and how to purge it."""
    for i in range(4):  # 400 KB a round against 1 MiB: the third round no longer fits
        answer = client.put(f"{DATA}/round{i}.bin", data=bytes([i]) * 400_000, headers=bearer("developer"))
        if answer.status_code == 413:
            break
        assert answer.status_code == 201
        assert client.delete(f"{DATA}/round{i}.bin", headers=bearer("maintainer")).status_code == 204
        info = client.get(API, headers=bearer("reporter")).json
        assert info["used_bytes"] + info["trash_bytes"] <= 1024 * 1024
    assert i == 2 and answer.json["error"]["code"] == "quota_exceeded"
    message = answer.json["error"]["message"]
    assert "781.2 KiB of 1.0 MiB used, 781.2 KiB of it in the trash" in message, message
    assert "POST /api/v1/projects/101/trash/purge" in message
    assert client.post(f"{API}/trash/purge", headers=bearer("developer")).status_code == 403
    purged = client.post(f"{API}/trash/purge", headers=bearer("maintainer"))
    assert purged.status_code == 200 and purged.json == {"objects": 2, "bytes": 800_000}
    assert storage_files(app) == set()
    again = client.put(f"{DATA}/round2.bin", data=b"2" * 400_000, headers=bearer("developer"))
    assert again.status_code == 201


def test_a_restore_honours_open_upload_reservations(client: FlaskClient, app: Flask) -> None:
    """A restore moves bytes from the trash back, so it adds nothing to what the quota bounds; but when the
    quota was lowered meanwhile, it must not take the room a colleague's direct upload holds."""
    client.put(f"{DATA}/old.bin", data=b"o" * 300_000, headers=bearer("developer"))
    client.delete(f"{DATA}/old.bin", headers=bearer("maintainer"))
    opened = client.post(
        f"{API}/uploads", json={"path": "big.bin", "size": 600_000}, headers=bearer("developer")
    )
    assert opened.status_code == 201  # 300 KB stored + 600 KB held: fits 1 MiB
    quota = client.put("/api/v1/admin/projects/101/quota", json={"quota": "800000"}, headers=bearer("admin"))
    assert quota.status_code == 200
    refused = client.post(f"{API}/trash/restore", json={"paths": ["old.bin"]}, headers=bearer("maintainer"))
    assert refused.status_code == 413 and refused.json["error"]["code"] == "quota_exceeded"
    assert client.head(f"{DATA}/old.bin", headers=bearer("reporter")).status_code == 404
    client.delete(f"{API}/uploads/{opened.json['id']}", headers=bearer("developer"))
    restored = client.post(f"{API}/trash/restore", json={"paths": ["old.bin"]}, headers=bearer("maintainer"))
    assert restored.status_code == 200
