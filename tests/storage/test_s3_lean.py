"""The S3 backend's object path (app.storage.s3_lean): GetObject, a small PutObject and UploadPart go as
signed requests over connections of our own, not as SDK calls, with the same guarantees: the bucket
checks Content-MD5, a missing object is NotFound, a bucket that does not answer is StorageUnavailable,
and connections are kept alive."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from app.errors import NotFound, StorageUnavailable
from app.storage.s3 import S3Backend
from app.storage.s3_lean import canonical_query
from app.storage.s3_parts import PART_SIZE, Pending
from tests.storage.conftest import make_backend


@pytest.fixture(params=["s3-moto", "s3-seaweedfs"])
def s3(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Backend:
    backend = make_backend(request.param, request, tmp_path, monkeypatch)
    assert isinstance(backend, S3Backend)
    return backend


def test_small_reads_and_writes_make_no_sdk_call(s3: S3Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(**_: Any) -> None:
        raise AssertionError("an SDK call on the small-object path")

    for operation in ("get_object", "put_object"):
        monkeypatch.setattr(s3._s3, operation, refused)
    body = b"0123456789" * 400
    s3.commit(s3.stage("lean/a", iter([body[:1000], body[1000:]])))
    assert b"".join(s3.read("lean/a")) == body
    assert b"".join(s3.read("lean/a", start=5, end=17)) == body[5:17]
    assert b"".join(s3.read("lean/a", start=3990)) == body[3990:]
    assert s3.stat("lean/a") is not None and s3.stat("lean/a").md5 == hashlib.md5(body).hexdigest()  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        s3.read("lean/missing")


def test_bytes_that_differ_from_their_md5_are_refused_by_the_bucket(
    s3: S3Backend, request: pytest.FixtureRequest
) -> None:
    """SeaweedFS (as AWS) checks the signed Content-MD5 and keeps nothing; moto does not check it, and
    the ETag check after the PUT refuses the upload (the index never points to those bytes)."""
    staged = s3.stage("lean/b", iter([b"the bytes the client sent"]))
    pending = staged.handle
    assert isinstance(pending, Pending) and pending.body is not None
    pending.body = b"the bytes the client SENT"  # a buffer changed after the md5 was taken
    with pytest.raises(StorageUnavailable, match=r"BadDigest|differ"):
        s3.commit(staged)
    if "seaweedfs" in request.node.name:
        assert s3.stat("lean/b") is None


def test_connections_to_the_bucket_are_kept_alive(s3: S3Backend, request: pytest.FixtureRequest) -> None:
    if "moto" in request.node.name:
        pytest.skip("moto's server answers every request with Connection: close")
    s3.commit(s3.stage("lean/c", iter([b"kept alive"])))
    for _ in range(30):
        assert b"".join(s3.read("lean/c")) == b"kept alive"
        s3.commit(s3.stage("lean/c", iter([b"kept alive"])))
    connections = s3._lean._setup()[2]
    assert connections is not None
    assert connections.opened <= 2, f"{connections.opened} connections for 61 sequential requests"


def test_a_read_left_unfinished_closes_its_connection(s3: S3Backend) -> None:
    s3.commit(s3.stage("lean/d", iter([b"x" * 3_000_000])))
    reader = s3.read("lean/d")
    assert next(iter(reader))
    reader.close()  # type: ignore[attr-defined]  # a generator: the client went away
    assert b"".join(s3.read("lean/d")) == b"x" * 3_000_000  # the next read is whole


def test_a_bucket_that_does_not_answer_is_storage_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    backend = S3Backend(
        bucket="gone",
        prefix="",
        endpoint_url="http://127.0.0.1:9",  # discard: nothing listens
        region="us-east-1",
        addressing_style="path",
        outage_patience=0.3,
    )
    with pytest.raises(StorageUnavailable, match="unreachable"):
        backend.read("a")
    staged = backend.stage("a", iter([b"body"]))
    with pytest.raises(StorageUnavailable, match="unreachable"):
        backend.commit(staged)


def test_multipart_parts_go_as_signed_requests_of_our_own(
    s3: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streamed upload's parts are UploadPart requests signed here (Content-MD5 signed, payload
    unsigned), not SDK calls; the bucket accepts them and the object is the bytes sent."""

    def refused(**_: Any) -> None:
        raise AssertionError("UploadPart through the SDK")

    monkeypatch.setattr(s3._s3, "upload_part", refused)
    body = os.urandom(2 * PART_SIZE + 12345)
    chunks = [body[i : i + 1_000_000] for i in range(0, len(body), 1_000_000)]
    staged = s3.stage("lean/parts", iter(chunks))
    pending = staged.handle
    assert isinstance(pending, Pending) and pending.upload_id is not None and len(pending.parts) > 2
    s3.commit(staged)
    assert hashlib.md5(b"".join(s3.read("lean/parts"))).hexdigest() == hashlib.md5(body).hexdigest()


@pytest.mark.parametrize(
    "query",
    [
        {"partNumber": "7", "uploadId": "2~abc.DEF_ghi-jkl"},
        {"uploadId": "a b/c+d=e&f%g", "partNumber": "10000"},
        {"uploadId": "ünïcode", "partNumber": "1"},
    ],
)
def test_the_canonical_query_is_the_one_botocore_signs(query: dict[str, str]) -> None:
    """Upload ids are the bucket's to choose (AWS's hold '.', '_' and '-', others may hold anything):
    the query signed and sent is encoded and ordered as SigV4 defines, as botocore computes it."""
    request = AWSRequest(method="PUT", url=f"https://bucket.example/key?{urlencode(query, quote_via=quote)}")
    auth = SigV4Auth(Credentials("id", "secret"), "s3", "us-east-1")
    assert canonical_query(query) == auth.canonical_query_string(request)
