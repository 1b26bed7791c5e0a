"""The storage contract, one suite for every backend (local disk, S3 on moto, S3 on SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from app.errors import NotFound
from app.storage import s3
from app.storage.base import StorageBackend
from tests.storage.conftest import PART


def chunks(data: bytes, size: int = 1024 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def put(storage: StorageBackend, key: str, data: bytes) -> None:
    storage.commit(storage.stage(key, chunks(data)))


def keys(storage: StorageBackend, prefix: str = "") -> list[str]:
    """Listed keys, sorted: AWS and the local backend list in byte order, SeaweedFS does not."""
    return sorted(blob.key for blob in storage.list(prefix))


def fetch(url: str, **kwargs: Any) -> requests.Response:
    if url.startswith("/"):  # the local backend's URLs are served by the registry app itself
        pytest.skip("served by the app; covered in tests/unit/test_data_plane.py")
    return requests.get(url, timeout=30, **kwargs)


@pytest.mark.parametrize("size", [0, 1, 1000, PART - 1, PART, 2 * PART + 12345])
def test_stage_then_commit(backend: StorageBackend, size: int) -> None:
    data = os.urandom(size)
    staged = backend.stage("projects/1/obj", chunks(data))
    assert (staged.size, staged.md5) == (size, hashlib.md5(data).hexdigest())
    assert backend.stat("projects/1/obj") is None  # invisible until committed
    backend.commit(staged)
    backend.discard(staged)  # after commit: harmless
    info = backend.stat("projects/1/obj")
    assert info is not None and info.size == size
    assert info.md5 in (None, hashlib.md5(data).hexdigest())
    assert b"".join(backend.read("projects/1/obj")) == data


def test_discard_leaves_nothing(backend: StorageBackend) -> None:
    staged = backend.stage("projects/1/gone", chunks(os.urandom(2 * PART + 1)))
    backend.discard(staged)
    backend.discard(staged)
    assert backend.stat("projects/1/gone") is None
    assert keys(backend) == []


def test_a_body_that_fails_midway_leaves_nothing(backend: StorageBackend) -> None:
    def broken() -> Iterator[bytes]:
        yield os.urandom(PART + 10)  # at least one part already uploaded
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        backend.stage("projects/1/broken", broken())
    assert backend.stat("projects/1/broken") is None
    assert keys(backend) == []


def test_commit_replaces(backend: StorageBackend) -> None:
    put(backend, "projects/1/k", b"first")
    put(backend, "projects/1/k", b"second version")
    assert b"".join(backend.read("projects/1/k")) == b"second version"


def test_ranged_reads(backend: StorageBackend) -> None:
    data = os.urandom(100_000)
    put(backend, "projects/1/r", data)
    assert b"".join(backend.read("projects/1/r", start=10, end=20)) == data[10:20]
    assert b"".join(backend.read("projects/1/r", start=99_990)) == data[99_990:]
    assert b"".join(backend.read("projects/1/r", start=0, end=100_000)) == data
    with pytest.raises(NotFound):
        b"".join(backend.read("projects/1/missing"))


def test_list_and_delete(backend: StorageBackend) -> None:
    for key in ("projects/1/d/b", "projects/1/d/a", "projects/1/e", "projects/2/d/a", "projects/1/d-x"):
        put(backend, key, key.encode())
    assert keys(backend, "projects/1/") == [
        "projects/1/d-x",
        "projects/1/d/a",
        "projects/1/d/b",
        "projects/1/e",
    ]
    assert keys(backend, "projects/1/d/") == ["projects/1/d/a", "projects/1/d/b"]
    sizes = {blob.key: blob.size for blob in backend.list("projects/2/")}
    assert sizes == {"projects/2/d/a": len(b"projects/2/d/a")}
    backend.delete("projects/1/d/a")
    backend.delete("projects/1/d/a")  # deleting what is gone is fine
    assert keys(backend, "projects/1/d/") == ["projects/1/d/b"]


def test_keys_with_unusual_characters(backend: StorageBackend) -> None:
    key = "projects/1/data/ünï cødé & more+plus=eq?.csv"
    put(backend, key, b"odd")
    assert keys(backend, "projects/1/data/") == [key]
    assert b"".join(fetch(backend.sign_download(key, ttl=60).url).iter_content()) == b"odd"


def test_signed_download_urls(backend: StorageBackend) -> None:
    data = os.urandom(300_000)
    put(backend, "projects/1/signed", data)
    url = backend.sign_download("projects/1/signed", ttl=60).url
    assert fetch(url).content == data  # no credential: the URL is the permission
    ranged = fetch(url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == data[100:200]


def test_check(backend: StorageBackend) -> None:
    backend.check()


def test_delete_many(backend: StorageBackend) -> None:
    for i in range(5):
        put(backend, f"projects/1/d/{i}", b"x")
    put(backend, "projects/2/d/0", b"other project")
    backend.delete_many(["projects/1/d/0", "projects/1/d/3", "projects/1/d/never-there"])
    assert keys(backend) == ["projects/1/d/1", "projects/1/d/2", "projects/1/d/4", "projects/2/d/0"]
    backend.delete_many([])


def test_stale_staging_is_removed_and_fresh_staging_kept(backend: StorageBackend) -> None:
    staged = backend.stage("projects/1/old", chunks(os.urandom(2 * PART + 1)))
    assert backend.remove_stale_staging(older_than=0) == 0  # nothing was begun before 1970
    # Cloud Storage keeps nothing of an unfinished resumable session (it expires after a week); a local
    # temp file and an S3 multipart upload are removed once they count as stale.
    expected = 0 if type(backend).__name__ == "GCSBackend" else 1
    assert backend.remove_stale_staging(older_than=time.time() + 60) == expected
    assert backend.remove_stale_staging(older_than=time.time() + 60) == 0
    backend.discard(staged)
    assert keys(backend) == []


def test_signed_download_as_attachment(backend: StorageBackend, request: pytest.FixtureRequest) -> None:
    """The bucket answers with the signed Content-Disposition (fake-gcs-server ignores it, see
    research/storage-emulators.md §4: the URL is still signed with it)."""
    put(backend, "projects/1/dir/weights ü.bin", b"w")
    wanted = "attachment; filename=\"weights _.bin\"; filename*=UTF-8''weights%20%C3%BC.bin"
    url = backend.sign_download("projects/1/dir/weights ü.bin", ttl=60, disposition=wanted).url
    answer = fetch(url)
    assert answer.content == b"w"
    if request.node.callspec.params["backend"] != "gcs-fake":
        assert answer.headers["Content-Disposition"] == wanted


@pytest.mark.parametrize("size", [0, 1000, 2 * PART + 12345])
def test_copy_inside_the_store(backend: StorageBackend, size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server-side copy: the destination gets the same bytes (and md5 where the store keeps one), the
    source stays, what was at the destination is replaced, a missing source is NotFound and copies
    nothing. S3 copies above its CopyObject limit in UploadPartCopy parts: the limit is lowered here."""
    monkeypatch.setattr(s3, "COPY_OBJECT_LIMIT", PART)
    data = os.urandom(size)
    put(backend, "projects/1/source ü", data)
    put(backend, "versions/1/abc/copy", b"what was there")
    backend.copy("projects/1/source ü", "versions/1/abc/copy")
    assert b"".join(backend.read("versions/1/abc/copy")) == data
    assert b"".join(backend.read("projects/1/source ü")) == data
    info = backend.stat("versions/1/abc/copy")
    assert info is not None and info.size == size
    assert info.md5 in (None, hashlib.md5(data).hexdigest())
    with pytest.raises(NotFound):
        backend.copy("projects/1/missing", "projects/1/nowhere")
    assert backend.stat("projects/1/nowhere") is None
    assert keys(backend) == ["projects/1/source ü", "versions/1/abc/copy"]  # nothing staged is left
