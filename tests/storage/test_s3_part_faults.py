"""A part that fails must never cost another upload its bytes: the part buffers a worker's uploads share
cannot be lent twice, each part's Content-MD5 is that of the bytes as they streamed in, and what the
bucket stored is checked against the stream before anything is indexed."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.errors import StorageUnavailable
from app.storage.base import PartBuffers
from app.storage.s3 import S3Backend
from tests.storage.conftest import PART, make_backend
from tests.storage.test_contract import chunks


@pytest.fixture(params=["s3-moto", "s3-seaweedfs"])
def s3(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Backend:
    backend = make_backend(request.param, request, tmp_path, monkeypatch)
    assert isinstance(backend, S3Backend)
    return backend


def test_the_pool_never_lends_a_buffer_twice() -> None:
    buffers = PartBuffers(2)
    first = buffers.take(10)
    buffers.give(first)
    with pytest.raises(RuntimeError, match="not lent"):
        buffers.give(first)  # given back twice: refused, not pooled twice
    assert buffers.take(10) is first
    second = buffers.take(10)
    assert second is not first
    with pytest.raises(RuntimeError, match="not lent"):
        buffers.give(bytearray(10))  # never taken from this pool


def _failing_first_part(backend: S3Backend, victim: str) -> None:
    """UploadPart fails once, for part 1 of `victim` (as a bucket outage does)."""
    real = backend._upload_part
    failed = threading.Event()

    def upload_part(key: str, upload_id: str, number: int, data: Any, digest: bytes, **how: Any) -> Any:
        if key == victim and number == 1 and not failed.is_set():
            failed.set()
            raise StorageUnavailable("S3 is unreachable; try again later")
        return real(key, upload_id, number, data, digest, **how)

    backend._upload_part = upload_part  # type: ignore[method-assign]


def _paced(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_after_a_failed_part_every_upload_stores_exactly_its_bytes(s3: S3Backend) -> None:
    """Before: the failed upload's current buffer went back to the pool twice, and from then on two
    uploads filled the same memory: on moto (which takes any Content-MD5) uploads stored each other's
    bytes; on SeaweedFS they failed with BadDigest."""
    s3._buffers = PartBuffers(4)
    _failing_first_part(s3, "projects/1/victim")
    with pytest.raises(StorageUnavailable):
        s3.stage("projects/1/victim", _paced(os.urandom(3 * PART)))
    bodies = {f"projects/1/after-{i}": os.urandom(2 * PART + 4096 * i) for i in range(10)}

    def upload(item: tuple[str, bytes]) -> None:
        staged = s3.stage(item[0], _paced(item[1]))
        s3.commit(staged)
        assert staged.md5 == hashlib.md5(item[1]).hexdigest()

    with ThreadPoolExecutor(5) as pool:
        list(pool.map(upload, bodies.items()))
    for key, body in bodies.items():
        assert b"".join(s3.read(key)) == body, key
    assert len(s3._buffers._free) == len({id(b) for b in s3._buffers._free})  # nothing pooled twice
    assert s3._buffers._lent == {}  # and every buffer came back


def test_a_failed_upload_leaves_no_multipart_upload(s3: S3Backend) -> None:
    _failing_first_part(s3, "projects/1/gone")
    with pytest.raises(StorageUnavailable):
        s3.stage("projects/1/gone", _paced(os.urandom(3 * PART)))
    assert s3.remove_stale_staging(older_than=2**40) == 0  # aborted already
    assert s3.stat("projects/1/gone") is None
    assert s3._buffers._lent == {}


def test_a_part_whose_buffer_changed_after_it_streamed_in_is_refused(s3: S3Backend) -> None:
    """The part's Content-MD5 comes from the stream, not from the buffer at send time: bytes changed in
    the buffer (what a buffer lent twice does) make S3 refuse the part, loudly. moto accepts any
    Content-MD5, so the registry's own check of the part's ETag must catch it there."""
    real = s3._upload_part

    def corrupting(key: str, upload_id: str, number: int, data: Any, digest: bytes, **how: Any) -> Any:
        if number == 2:
            data[0] ^= 0xFF  # another upload wrote into this buffer
        return real(key, upload_id, number, data, digest, **how)

    s3._upload_part = corrupting  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable, match=r"stored different bytes|refused"):
        staged = s3.stage("projects/1/corrupt", chunks(os.urandom(3 * PART)))
        s3.commit(staged)
    assert s3.stat("projects/1/corrupt") is None
    assert s3._buffers._lent == {}


def test_a_completion_whose_answer_was_lost_is_found_done(
    s3: S3Backend, request: pytest.FixtureRequest
) -> None:
    """CompleteMultipartUpload succeeds but the connection drops before its answer: the retry may find the
    upload gone (NoSuchUpload; moto and SeaweedFS answer a second completion again, a bucket that has
    cleaned the upload up does not), and the object, whose ETag is the one its parts make, counts as
    stored. On SeaweedFS the parts go with CRC-32s, so no ETag is known in advance: the object counts by
    its size and its number of parts."""
    from botocore.exceptions import ClientError, ConnectionClosedError

    client = s3._s3
    real = client.complete_multipart_upload
    lost = threading.Event()

    def complete_then_drop(**params: Any) -> Any:
        if lost.is_set():
            raise ClientError({"Error": {"Code": "NoSuchUpload"}}, "CompleteMultipartUpload")
        real(**params)
        lost.set()
        raise ConnectionClosedError(endpoint_url="http://bucket")

    client.complete_multipart_upload = complete_then_drop
    body = os.urandom(2 * PART + 123)
    staged = s3.stage("projects/1/lost-answer", _paced(body))
    s3.commit(staged)
    assert lost.is_set() and b"".join(s3.read("projects/1/lost-answer")) == body
    assert s3._part_checksums.crc32() is ("seaweedfs" in request.node.name)
