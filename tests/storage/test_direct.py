"""Direct uploads against every cloud backend: the client PUTs to signed URLs (S3 presigned parts, a GCS
signed resumable session), finish_direct sees exactly the bytes sent, commit copies them into place.
(The local backend's signed URLs are served by the app: tests/unit/test_direct_uploads.py.)"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from app.storage.base import DirectUpload
from tests.storage.conftest import PART
from tests.storage.goog4 import Rejected, public_key_of, start_resumable


@pytest.fixture
def cloud(cloud_backend: Any) -> Any:
    return cloud_backend


def send(
    direct: DirectUpload, data: bytes, request: pytest.FixtureRequest, *, parts: int | None = None
) -> None:
    """What a client does with a session: no credential, only the signed URLs."""
    if direct.kind == "gcs_resumable":
        assert direct.url is not None
        key = public_key_of(request.getfixturevalue("service_account_file"))
        session_uri = start_resumable(direct.url, direct.headers, key)
        answer = requests.put(session_uri, data=data, timeout=60)
        assert answer.status_code in (200, 201), answer.text
        return
    for part in direct.parts[:parts]:
        chunk = data[part.offset : part.offset + part.size]
        answer = requests.put(part.url, data=chunk, timeout=60)
        assert answer.status_code == 200, answer.text


def test_direct_upload_then_commit(cloud: Any, request: pytest.FixtureRequest) -> None:
    data = os.urandom(2 * PART + 4321)
    direct = cloud.begin_direct("uploads/s1", size=len(data), ttl=600)
    if direct.kind == "parts":
        assert [p.size for p in direct.parts] == [PART, PART, 4321]
        assert direct.handle  # the multipart upload id
    send(direct, data, request)
    staged = cloud.finish_direct("uploads/s1", direct.handle, size=len(data), key="projects/1/big")
    assert staged is not None and (staged.size, staged.md5) == (len(data), hashlib.md5(data).hexdigest())
    assert cloud.stat("projects/1/big") is None  # not in place before commit
    cloud.commit(staged)
    cloud.discard(staged)
    assert b"".join(cloud.read("projects/1/big")) == data
    assert sorted(b.key for b in cloud.list("")) == ["projects/1/big"]  # the temporary object is gone


def test_unfinished_upload_is_not_finished(cloud: Any, request: pytest.FixtureRequest) -> None:
    data = os.urandom(2 * PART + 1)
    direct = cloud.begin_direct("uploads/s2", size=len(data), ttl=600)
    if direct.kind == "parts":
        send(direct, data, request, parts=2)  # the last part is missing
    assert cloud.finish_direct("uploads/s2", direct.handle, size=len(data), key="projects/1/x") is None
    if direct.kind == "parts":
        send(direct, data, request)  # the client goes on
        assert (
            cloud.finish_direct("uploads/s2", direct.handle, size=len(data), key="projects/1/x") is not None
        )


def test_discard_and_abort_leave_nothing(cloud: Any, request: pytest.FixtureRequest) -> None:
    data = os.urandom(PART + 1)
    direct = cloud.begin_direct("uploads/s3", size=len(data), ttl=600)
    send(direct, data, request)
    staged = cloud.finish_direct("uploads/s3", direct.handle, size=len(data), key="projects/1/y")
    cloud.discard(staged)
    assert list(cloud.list("")) == []
    other = cloud.begin_direct("uploads/s4", size=len(data), ttl=600)
    send(other, data, request, parts=1)
    cloud.abort_direct("uploads/s4", other.handle)
    cloud.abort_direct("uploads/s4", other.handle)  # idempotent
    assert list(cloud.list("")) == []
    assert cloud.finish_direct("uploads/s4", other.handle, size=len(data), key="projects/1/z") is None


def test_part_urls_are_scoped(cloud: Any, service_account_file: Path, request: pytest.FixtureRequest) -> None:
    """A part URL is good for its own upload only: S3 (SeaweedFS, moto) checks presigned URLs itself;
    the GCS URL verifies only as a resumable POST on its own temporary object."""
    direct = cloud.begin_direct("uploads/s5", size=10, ttl=600)
    if direct.kind == "gcs_resumable":
        key = public_key_of(service_account_file)
        with pytest.raises(Rejected):
            start_resumable(direct.url.replace("uploads/s5", "projects/1/evil"), direct.headers, key)
        with pytest.raises(Rejected):
            start_resumable(direct.url, {}, key)  # x-goog-resumable is signed
        return
    if request.node.callspec.params["cloud_backend"] == "s3-moto":
        return  # moto without IAM auth checks no signature (research/storage-emulators.md §8)
    url = direct.parts[0].url
    signature = url.split("X-Amz-Signature=")[1][:64]
    forged = url.replace(signature, signature[:-2] + ("00" if not signature.endswith("00") else "11"))
    assert requests.put(forged, data=b"0123456789", timeout=30).status_code == 403
    # (SeaweedFS 4.48 accepts a part URL whose PartNumber was edited: it leaves that parameter out of the
    # signature check. The part still lands in the session's own upload, so nothing else is reachable.)
    other_key = requests.put(url.replace("uploads/s5", "projects/1/evil"), data=b"0123456789", timeout=30)
    assert other_key.status_code == 403


@pytest.mark.parametrize("round_", range(3))
def test_bytes_sent_after_finish_never_reach_the_committed_object(
    cloud: Any, request: pytest.FixtureRequest, round_: int
) -> None:
    """A holder of the upload URL sends other bytes once `complete` has verified the upload: the object
    committed is the verified one (S3: a completed multipart upload takes no more parts; GCS: the start URL
    still works until it expires, so what is verified is a copy no signed URL reaches)."""
    good, evil = os.urandom(PART + 7), os.urandom(PART + 7)
    direct = cloud.begin_direct("uploads/race", size=len(good), ttl=600)
    send(direct, good, request)
    staged = cloud.finish_direct("uploads/race", direct.handle, size=len(good), key="projects/1/raced")
    assert staged is not None and staged.md5 == hashlib.md5(good).hexdigest()
    if direct.kind == "gcs_resumable":
        send(direct, evil, request)  # a whole new session on the same start URL
    else:
        late = requests.put(direct.parts[0].url, data=evil[:PART], timeout=30)
        assert late.status_code >= 400, late.text  # S3 and SeaweedFS: 404 NoSuchUpload (moto: a 500)
    cloud.commit(staged)
    cloud.discard(staged)
    assert hashlib.md5(b"".join(cloud.read("projects/1/raced"))).hexdigest() == staged.md5
    cloud.abort_direct("uploads/race", direct.handle)
    assert sorted(b.key for b in cloud.list("")) == ["projects/1/raced"]
