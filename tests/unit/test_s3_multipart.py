"""S3 door multipart uploads in-process: quota held by open uploads and checked at creation, per part
and at completion; the API's session calls do not reach door uploads; abandoned uploads are dropped by
the stale upload job; a part landing after its upload closed is not kept; ListMultipartUploads paging."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from app.db.models import UploadSessionRow
from app.jobs.cleanup import remove_stale_uploads
from tests.conftest import TOKENS, bearer

MiB = 1024 * 1024
DOOR = "/ml/vision/-/s3"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(default_quota="12MiB")


def call(
    client: FlaskClient,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    role: str = "developer",
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """A SigV4-signed request (botocore's signer, the GitLab token as key id and secret)."""
    token = TOKENS[role]
    url = f"http://localhost{DOOR}{path}" + (f"?{query}" if query else "")
    sent = {"x-amz-content-sha256": hashlib.sha256(body).hexdigest(), **(headers or {})}
    signed = AWSRequest(method=method, url=url, data=body, headers=sent)
    S3SigV4Auth(Credentials(token, token), "s3", "us-east-1").add_auth(signed)
    return client.open(
        f"{DOOR}{path}", method=method, query_string=query, data=body, headers=dict(signed.headers.items())
    )


def text(response: TestResponse, tag: str) -> list[str]:
    root = ElementTree.fromstring(response.data)
    return [e.text or "" for e in root.iter() if e.tag.rpartition("}")[2] == tag]


def create(client: FlaskClient, key: str, role: str = "developer") -> str:
    answer = call(client, "POST", f"/b/{key}", "uploads", role=role)
    assert answer.status_code == 200, answer.data
    return text(answer, "UploadId")[0]


def put_part(client: FlaskClient, key: str, upload: str, number: int, body: bytes) -> TestResponse:
    return call(client, "PUT", f"/b/{key}", f"partNumber={number}&uploadId={upload}", body)


def complete_body(parts: list[tuple[int, bytes]]) -> bytes:
    listed = "".join(
        f'<Part><PartNumber>{n}</PartNumber><ETag>"{hashlib.md5(b).hexdigest()}"</ETag></Part>'
        for n, b in parts
    )
    return f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()


def code(response: TestResponse) -> str:
    return text(response, "Code")[0] if response.data else ""


def test_open_uploads_hold_quota_checked_per_part_and_at_completion(app: Flask) -> None:
    client = app.test_client()
    first, second = os.urandom(5 * MiB), os.urandom(5 * MiB)
    upload = create(client, "a.bin")
    assert put_part(client, "a.bin", upload, 1, first).status_code == 200
    assert put_part(client, "a.bin", upload, 2, second).status_code == 200
    # the open upload holds its 10 MiB: a 3 MiB PUT elsewhere no longer fits in 12 MiB
    refused = client.put(
        "/ml/vision/-/data/b/other.bin", data=os.urandom(3 * MiB), headers=bearer("developer")
    )
    assert refused.status_code == 413, refused.status
    # a part over the quota is refused before it is stored
    too_much = put_part(client, "a.bin", upload, 3, os.urandom(3 * MiB))
    assert too_much.status_code in (403, 413) and code(too_much) == "QuotaExceeded"
    # completion checks again: the project's quota lowered meanwhile
    app.extensions["data_registry"].index.set_quota(101, 8 * MiB)
    body = complete_body([(1, first), (2, second)])
    late = call(client, "POST", "/b/a.bin", f"uploadId={upload}", body)
    assert code(late) == "QuotaExceeded"
    assert client.head("/ml/vision/-/data/b/a.bin", headers=bearer("developer")).status_code == 404
    # the refused completion left the upload open; with room again it completes
    app.extensions["data_registry"].index.set_quota(101, None)
    done = call(client, "POST", "/b/a.bin", f"uploadId={upload}", body)
    assert done.status_code == 200, done.data
    head = client.head("/ml/vision/-/data/b/a.bin", headers=bearer("developer"))
    assert head.headers["X-Checksum-MD5"] == hashlib.md5(first + second).hexdigest()
    # the reservation went with the upload: 2 MiB more fit in 12
    assert (
        client.put("/ml/vision/-/data/b/c.bin", data=os.urandom(MiB), headers=bearer("developer")).status_code
        == 201
    )


def test_creation_is_refused_when_nothing_fits(app: Flask) -> None:
    client = app.test_client()
    client.put("/ml/vision/-/data/b/full.bin", data=os.urandom(12 * MiB), headers=bearer("developer"))
    answer = call(client, "POST", "/b/more.bin", "uploads")
    assert code(answer) == "QuotaExceeded"
    assert code(call(client, "POST", "/b/more.bin", "uploads", role="reporter")) == "AccessDenied"


def test_the_json_api_does_not_complete_or_abort_door_uploads(app: Flask) -> None:
    client = app.test_client()
    upload = create(client, "x.bin")
    api = f"/api/v1/projects/101/uploads/{upload}"
    assert client.post(f"{api}/complete", headers=bearer("developer")).status_code == 404
    assert client.delete(api, headers=bearer("developer")).status_code == 404
    assert call(client, "GET", "/b/x.bin", f"uploadId={upload}").status_code == 200  # still open


def test_abandoned_uploads_are_dropped_by_the_stale_upload_job(app: Flask) -> None:
    client = app.test_client()
    upload = create(client, "left.bin")
    assert put_part(client, "left.bin", upload, 1, os.urandom(1000)).status_code == 200
    services = app.extensions["data_registry"]
    assert services.storage.list(f"uploads/{upload}/") and list(services.storage.list(f"uploads/{upload}/"))
    removed = remove_stale_uploads(
        services.upload_sessions, services.storage, age=3600, now=datetime.now(UTC) + timedelta(days=2)
    )
    assert removed >= 1
    assert list(services.storage.list(f"uploads/{upload}/")) == []
    assert code(call(client, "GET", "/b/left.bin", f"uploadId={upload}")) == "NoSuchUpload"


def test_a_part_that_lands_after_its_upload_closed_is_not_kept(app: Flask) -> None:
    services = app.extensions["data_registry"]
    client = app.test_client()
    upload = create(client, "late.bin")
    assert services.upload_sessions.claim(upload)  # a completion owns the upload now
    late = put_part(client, "late.bin", upload, 1, os.urandom(1000))
    assert code(late) == "NoSuchUpload"
    assert list(services.storage.list(f"uploads/{upload}/")) == []


def test_list_multipart_uploads_prefix_delimiter_and_markers(app: Flask) -> None:
    client = app.test_client()
    made = {key: create(client, key) for key in ("d/1", "d/2", "e/1", "f")}
    again = create(client, "f")
    everything = call(client, "GET", "/b", "uploads")
    assert text(everything, "Key") == ["d/1", "d/2", "e/1", "f", "f"]
    assert text(everything, "UploadId") == [made["d/1"], made["d/2"], made["e/1"], made["f"], again]
    rolled = call(client, "GET", "/b", "uploads&delimiter=%2F")
    assert text(rolled, "Key") == ["f", "f"] and text(rolled, "Prefix")[-2:] == ["d/", "e/"]
    page = call(client, "GET", "/b", "uploads&max-uploads=2")
    assert text(page, "Key") == ["d/1", "d/2"] and text(page, "IsTruncated") == ["true"]
    rest = call(client, "GET", "/b", f"uploads&key-marker=d%2F2&upload-id-marker={made['d/2']}")
    assert text(rest, "Key") == ["e/1", "f", "f"]
    after = call(client, "GET", "/b", f"uploads&key-marker=f&upload-id-marker={made['f']}")
    assert text(after, "UploadId") == [again]
    prefixed = call(client, "GET", "/b", "uploads&prefix=d%2F")
    assert text(prefixed, "Key") == ["d/1", "d/2"]


def test_bad_part_numbers_and_unknown_uploads(app: Flask) -> None:
    client = app.test_client()
    upload = create(client, "n.bin")
    assert code(put_part(client, "n.bin", upload, 0, b"x")) == "InvalidArgument"
    assert code(put_part(client, "n.bin", upload, 10001, b"x")) == "InvalidArgument"
    assert code(put_part(client, "n.bin", "f" * 32, 1, b"x")) == "NoSuchUpload"
    assert code(put_part(client, "other.bin", upload, 1, b"x")) == "NoSuchUpload"  # another key's
    empty = call(client, "POST", "/b/n.bin", f"uploadId={upload}", b"<CompleteMultipartUpload/>")
    assert code(empty) == "MalformedXML"
    assert code(call(client, "POST", "/b/n.bin", f"uploadId={upload}", b"<nope")) == "MalformedXML"
    assert call(client, "DELETE", "/b/n.bin", f"uploadId={upload}").status_code == 204
    assert code(call(client, "DELETE", "/b/n.bin", f"uploadId={upload}")) == "NoSuchUpload"


def test_expired_rows_are_not_listed(app: Flask) -> None:
    client = app.test_client()
    upload = create(client, "old.bin")
    engine = app.extensions["data_registry"].index._engine
    with engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        conn.execute(update(UploadSessionRow).where(UploadSessionRow.id == upload).values(expires_at=past))
    assert text(call(client, "GET", "/b", "uploads"), "Key") == []


def test_one_part_sent_many_times_at_once_keeps_one_whole_version(app: Flask) -> None:
    """Clients re-send a part whose answer was lost, possibly while the first try still runs: whichever
    lands last is the part, its blob the only one left, the room held is its size, and it completes."""
    services = app.extensions["data_registry"]
    upload = create(app.test_client(), "race.bin")
    bodies = [os.urandom(100_000 + n) for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: put_part(app.test_client(), "race.bin", upload, 1, b), bodies))
    assert [a.status_code for a in answers] == [200] * 8
    client = app.test_client()
    listed = call(client, "GET", "/b/race.bin", f"uploadId={upload}")
    (etag,) = text(listed, "ETag")
    (winner,) = [b for b in bodies if f'"{hashlib.md5(b).hexdigest()}"' == etag]
    assert len(list(services.storage.list(f"uploads/{upload}/"))) == 1
    assert services.upload_sessions.reserved(101, datetime.now(UTC)) == len(winner)
    done = call(client, "POST", "/b/race.bin", f"uploadId={upload}", complete_body([(1, winner)]))
    assert done.status_code == 200, done.data
    got = client.get("/ml/vision/-/data/b/race.bin", headers=bearer("developer"), follow_redirects=True)
    assert got.data == winner
    assert list(services.storage.list(f"uploads/{upload}/")) == []
    assert services.upload_sessions.reserved(101, datetime.now(UTC)) == 0


def test_conditional_complete_as_s3fs_sends_it(app: Flask) -> None:
    """s3fs (DVC's s3 remote) completes with `If-None-Match: *` when it must not overwrite."""
    client = app.test_client()
    client.put("/ml/vision/-/data/b/there.bin", data=b"already here", headers=bearer("developer"))
    upload = create(client, "there.bin")
    part = os.urandom(1000)
    assert put_part(client, "there.bin", upload, 1, part).status_code == 200
    body = complete_body([(1, part)])
    refused = call(client, "POST", "/b/there.bin", f"uploadId={upload}", body, headers={"If-None-Match": "*"})
    assert refused.status_code == 412 and code(refused) == "PreconditionFailed"
    got = client.get("/ml/vision/-/data/b/there.bin", headers=bearer("developer"), follow_redirects=True)
    assert got.data == b"already here"
    assert call(client, "POST", "/b/there.bin", f"uploadId={upload}", body).status_code == 200  # still open


def test_a_slow_completion_answers_200_at_once_then_spaces_then_the_result(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As S3 does for a completion that takes long (here: any), so that no client's read timeout fires;
    an error comes as an <Error> document in the 200, which botocore turns into an error (and retries)."""
    from app.web import s3_multipart

    monkeypatch.setattr(s3_multipart, "KEEPALIVE_AFTER", 0.0)
    monkeypatch.setattr(s3_multipart, "KEEPALIVE_EVERY", 0.001)
    client = app.test_client()
    part = os.urandom(200_000)
    good = f"files/md5/{hashlib.md5(part).hexdigest()[:2]}/{hashlib.md5(part).hexdigest()[2:]}"
    for key, expected in ((f"{good[:13]}{'0' * 30}", "Error"), (good, "CompleteMultipartUploadResult")):
        upload = create(client, key)
        assert put_part(client, key, upload, 1, part).status_code == 200
        answer = call(client, "POST", f"/b/{key}", f"uploadId={upload}", complete_body([(1, part)]))
        assert answer.status_code == 200
        assert answer.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        root = ElementTree.fromstring(answer.data)  # the spaces keep it well-formed
        assert root.tag.rpartition("}")[2] == expected
    assert text(answer, "ETag") == [f'"{hashlib.md5(hashlib.md5(part).digest()).hexdigest()}-1"']
    refused = ElementTree.fromstring(call(client, "GET", "/b", "uploads").data)
    assert [e.text for e in refused.iter() if e.tag.endswith("Key")][-1] == f"{good[:13]}{'0' * 30}"
