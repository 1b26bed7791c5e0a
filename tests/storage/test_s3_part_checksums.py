"""How a streamed upload's parts are checked by the bucket: a bucket shown to verify x-amz-checksum-crc32
(SeaweedFS, as AWS and MinIO) gets each part's CRC-32 as it streamed in (a fifth of md5's CPU); one that
ignores the header gets each part's Content-MD5 and has its ETags checked, as before. The bucket is asked
once, at a backend's first upload, and either way a part whose
buffer changed after it streamed in is refused and nothing is kept."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from app.errors import StorageUnavailable
from app.storage.s3 import S3Backend
from tests.storage.conftest import PART, make_backend
from tests.storage.test_contract import chunks

PROBE_KEY = ".registry/part-checksum-probe"


@pytest.fixture
def seaweed(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Backend:
    backend = make_backend("s3-seaweedfs", request, tmp_path, monkeypatch)
    assert isinstance(backend, S3Backend)
    return backend


def _checks_sent(s3: S3Backend, *, ignored: bool = False) -> tuple[list[set[str]], list[str]]:
    """The check headers of every part PUT from now on, and the keys of the other PUTs; `ignored`: the
    bucket never sees a CRC-32 (what a bucket that does not know the header makes of it)."""
    parts: list[set[str]] = []
    others: list[str] = []
    real = s3._lean.put

    def put(key: str, body: Any, check: dict[str, str], **how: Any) -> dict[str, Any]:
        if ignored:
            check = {k: v for k, v in check.items() if k != "x-amz-checksum-crc32"}
        if how.get("part"):
            parts.append(set(check))
        else:
            others.append(key)
        return real(key, body, check, **how)

    s3._lean.put = put  # type: ignore[method-assign]
    return parts, others


def _upload(s3: S3Backend, key: str) -> bytes:
    body = os.urandom(2 * PART + 4321)
    staged = s3.stage(key, chunks(body))
    s3.commit(staged)
    assert staged.md5 == hashlib.md5(body).hexdigest()
    assert b"".join(s3.read(key)) == body
    return body


def test_a_bucket_that_checks_crc32_is_asked_once_and_gets_crc32_parts(seaweed: S3Backend) -> None:
    parts, others = _checks_sent(seaweed)
    _upload(seaweed, "projects/1/first")
    _upload(seaweed, "projects/1/second")
    assert len(parts) >= 6 and all(check == {"x-amz-checksum-crc32"} for check in parts)
    assert others == [seaweed._key(PROBE_KEY)] * 2  # a wrong checksum refused, a right one kept
    assert seaweed.stat(PROBE_KEY) is None  # and the probe object deleted


@pytest.mark.parametrize("backend", ["s3-moto", "s3-seaweedfs"])
def test_a_bucket_that_takes_any_checksum_gets_md5_parts(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto stores a part whatever its x-amz-checksum-crc32; so does SeaweedFS here when the header does
    not reach it."""
    s3 = make_backend(backend, request, tmp_path, monkeypatch)
    assert isinstance(s3, S3Backend)
    parts, others = _checks_sent(s3, ignored=backend == "s3-seaweedfs")
    _upload(s3, "projects/1/first")
    _upload(s3, "projects/1/second")
    assert len(parts) >= 6 and all(check == {"content-md5"} for check in parts)
    assert others == [s3._key(PROBE_KEY)]  # the wrong checksum was taken: asked no further
    assert s3._part_checksums.crc32() is False and s3.stat(PROBE_KEY) is None


def test_a_crc32_part_whose_buffer_changed_after_it_streamed_in_is_refused(seaweed: S3Backend) -> None:
    """The CRC-32 comes from the stream, not from the buffer at send time; the bucket refuses the part."""
    _upload(seaweed, "projects/1/first")
    assert seaweed._part_checksums.crc32()
    real = seaweed._upload_part

    def corrupting(key: str, upload_id: str, number: int, data: Any, digest: bytes, **how: Any) -> Any:
        assert how == {"crc32": True}
        if number == 2:
            data[0] ^= 0xFF  # another upload wrote into this buffer
        return real(key, upload_id, number, data, digest, **how)

    seaweed._upload_part = corrupting  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable, match="BadDigest"):
        seaweed.commit(seaweed.stage("projects/1/corrupt", chunks(os.urandom(3 * PART))))
    assert seaweed.stat("projects/1/corrupt") is None
    assert seaweed._buffers._lent == {}


def test_a_lost_completion_is_not_confused_with_another_object_at_the_key(seaweed: S3Backend) -> None:
    """No ETag is known in advance for CRC-32 parts: an object at the staged key counts as the upload
    only with the staged size and as many parts (test_s3_part_faults: a lost answer is found done)."""
    from botocore.exceptions import ClientError

    _upload(seaweed, "projects/1/first")
    seaweed.commit(seaweed.stage("projects/1/other", chunks(b"an older object, of another size")))

    def gone(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "NoSuchUpload"}}, "CompleteMultipartUpload")

    seaweed._s3.complete_multipart_upload = gone
    staged = seaweed.stage("projects/1/other", chunks(os.urandom(2 * PART + 7)))
    with pytest.raises(StorageUnavailable, match="NoSuchUpload"):
        seaweed.commit(staged)
    seaweed.discard(staged)
    assert b"".join(seaweed.read("projects/1/other")) == b"an older object, of another size"


def test_a_bucket_that_cannot_be_asked_gets_md5_parts_and_is_asked_again(seaweed: S3Backend) -> None:
    parts, _ = _checks_sent(seaweed)
    probe = seaweed._key(PROBE_KEY)
    real = seaweed._lean.put
    failures = [1]

    def flaky(key: str, body: Any, check: dict[str, str], **how: Any) -> dict[str, Any]:
        if key == probe and failures:
            failures.pop()
            raise StorageUnavailable("S3 is failing (503); try again later")
        return real(key, body, check, **how)

    seaweed._lean.put = flaky  # type: ignore[method-assign]
    _upload(seaweed, "projects/1/first")
    assert parts and all(check == {"content-md5"} for check in parts)
    parts.clear()
    _upload(seaweed, "projects/1/second")
    assert parts and all(check == {"x-amz-checksum-crc32"} for check in parts)
