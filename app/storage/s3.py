"""S3-compatible storage (AWS S3, MinIO, SeaweedFS) on boto3: the only module that imports it. Uploads are
multipart (s3_parts: parts of 8 MiB), completed only on commit; small bodies are one PUT. Every part
carries a checksum of the bytes as they streamed in, which the bucket verifies: its CRC-32 where the
bucket is shown to check x-amz-checksum-crc32 (s3_lean.PartChecksums, asked at the first upload), else
its Content-MD5, against which the ETag S3 answers is checked too; so whatever happens to a buffer, S3
never keeps bytes the client did not send. Downloads and direct uploads are presigned URLs (s3_signing)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from app.errors import NotFound, StorageUnavailable
from app.model.objects import BlobInfo, SignedURL
from app.outages import ride_out
from app.storage.base import CHUNK_SIZE, DirectUpload, PartBuffers, StagedObject
from app.storage.s3_assemble import assemble_parts
from app.storage.s3_lean import LeanObjects, PartChecksums
from app.storage.s3_parts import (
    MAX_PARTS,
    PART_BUFFERS,
    PART_SIZE,
    PARTS_IN_FLIGHT,
    Crc32,
    Pending,
    StreamedParts,
    check_etag,
    is_completed,
    md5_header,
    multipart_etag,
    new_md5,
    part_check,
    uploaded_parts,
)
from app.storage.s3_signing import direct_part_size, sign_direct_upload, sign_download

COPY_OBJECT_LIMIT = 5 * 2**30  # the largest object one CopyObject copies; above it, UploadPartCopy
OUTAGE_PATIENCE = 15.0  # seconds a call waits out a bucket that does not answer (a restart) before a 503


def _blob(key: str, size: int, meta: dict[str, Any]) -> BlobInfo:
    """A blob's info from HeadObject's answer or a listing entry; its ETag is its md5 unless it was a
    multipart upload."""
    etag = str(meta.get("ETag", "")).strip('"')
    return BlobInfo(
        key=key, size=size, md5=etag if len(etag) == 32 else None, modified=meta.get("LastModified")
    )


def _transient(error: BaseException) -> bool:
    """A connection that failed or a 5xx (a bucket restarting): worth retrying for a while."""
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    return False


def copy_blob(backend: S3Backend, source_key: str, destination_key: str) -> None:
    """S3Backend.copy: CopyObject up to 5 GiB (COPY_OBJECT_LIMIT); above, boto3's managed copy, a multipart
    upload of UploadPartCopy parts (at most MAX_PARTS). Either way the destination appears whole or not at
    all, and the bytes never leave the bucket."""
    source = backend.stat(source_key)
    if source is None:
        raise NotFound("Object not found")
    bucket, key = backend._bucket, backend._key(destination_key)
    copy_source = {"Bucket": bucket, "Key": backend._key(source_key)}
    if source.size <= COPY_OBJECT_LIMIT:
        backend._call("copy_object", Key=key, CopySource=copy_source)
        return
    part = max(PART_SIZE, -(-source.size // MAX_PARTS))
    config = TransferConfig(multipart_threshold=COPY_OBJECT_LIMIT, multipart_chunksize=part)
    try:
        backend._s3.copy(copy_source, bucket, key, Config=config)
    except (ClientError, BotoCoreError) as e:
        raise StorageUnavailable("S3 copy failed; try again later") from e


class S3Backend:
    """Blobs under `prefix` in one bucket; presigned GET URLs (SigV4) for downloads."""

    copy, assemble = copy_blob, assemble_parts  # StorageBackend methods: above the class, in s3_assemble

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        public_endpoint_url: str | None = None,
        region: str,
        addressing_style: str,
        part_size: int = PART_SIZE,
        max_parts: int = MAX_PARTS,
        outage_patience: float = OUTAGE_PATIENCE,
    ) -> None:
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,  # a bucket that drops packets costs seconds, not botocore's 60 s a try
        )
        self._bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        # A session of our own: credentials come from the standard AWS chain (env, profile, IRSA), resolved
        # for this backend rather than cached process-wide.
        session = boto3.session.Session()
        self._s3 = session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        # Presigned URLs carry the host they are signed for: sign for the address clients use.
        self._signer = (
            session.client("s3", endpoint_url=public_endpoint_url, region_name=region, config=config)
            if public_endpoint_url
            else self._s3
        )
        self._part_size, self._max_parts = part_size, max_parts
        self._buffers = PartBuffers(PART_BUFFERS)
        self._patience = outage_patience
        # GetObject, a small PutObject and UploadPart: signed requests over connections of our own
        self._lean = LeanObjects(self._s3, bucket, lambda call: ride_out(call, _transient, self._patience))
        self._part_checksums = PartChecksums(self._lean, self._key(".registry/part-checksum-probe"))

    def _key(self, key: str) -> str:
        return self._prefix + key

    def _call(self, operation: str, *, patient: bool = True, **params: Any) -> Any:
        """One S3 call; connection failures and 5xx are retried for up to OUTAGE_PATIENCE seconds (a
        bucket restarting; not `patient`: answered at once), then StorageUnavailable with a message a
        person can act on."""
        method = getattr(self._s3, operation)
        patience = self._patience if patient else 0.0
        try:
            return ride_out(lambda: method(Bucket=self._bucket, **params), _transient, patience)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound("Object not found") from e
            if code == "BadDigest":
                raise StorageUnavailable(
                    "S3 refused bytes that differ from what the registry received (BadDigest); "
                    "nothing was kept, try again"
                ) from e
            if _transient(e):
                raise StorageUnavailable(f"S3 is failing ({code or 'a 5xx answer'}); try again later") from e
            raise StorageUnavailable(f"S3 refused {operation}: {code or 'error'}") from e
        except BotoCoreError as e:
            raise StorageUnavailable("S3 is unreachable; try again later") from e

    def stage(self, key: str, chunks: Iterable[bytes]) -> StagedObject:
        """Parts go up in the background (at most PARTS_IN_FLIGHT per upload) while the next one is read
        from the client, which keeps the client streaming. A body gathers in a buffer of its own up to
        SMALL_BODY (a 4 KB body costs 4 KB), then in part buffers that every upload of this worker shares
        (PartBuffers): made once, reused, and at most PART_BUFFERS of them, so a worker's memory stays flat
        however many uploads run at once (an upload waits for a buffer when all are in use). Whatever
        fails, the multipart upload is aborted and every buffer goes back exactly once."""
        digest, size, pending = hashlib.md5(usedforsecurity=False), 0, Pending()
        crc32 = self._part_checksums.crc32()
        pending.etag_known = not crc32
        with ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT) as pool:
            parts = StreamedParts(
                pending=pending,
                pool=pool,
                buffers=self._buffers,
                part_size=self._part_size,
                max_parts=self._max_parts,
                start=lambda: str(self._call("create_multipart_upload", Key=self._key(key))["UploadId"]),
                send=functools.partial(self._upload_part, key, crc32=crc32),
                part_digest=Crc32 if crc32 else new_md5,
            )
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    parts.write(memoryview(chunk))
                parts.finish(digest.digest())
            except BaseException:
                parts.cancel()
                self._abort(key, pending)
                raise
            finally:
                parts.release()
        return StagedObject(key=key, size=size, md5=digest.hexdigest(), handle=pending)

    def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray, digest: bytes, *, crc32: bool
    ) -> dict[str, Any]:
        """Send one part with the checksum of its bytes as they streamed in (`digest`: a CRC-32 or an md5,
        never computed from `data`), signed, over the lean path: the SDK would hash every byte again to
        sign it (SHA-256 over plain HTTP) and spend ~1 ms on the call's machinery."""
        answer = self._lean.put(self._key(key), data, part_check(digest, crc32), part=(upload_id, number))
        if not crc32:
            check_etag(answer, digest.hex(), f"part {number}")
        return {"ETag": answer["ETag"], "PartNumber": number}

    def _abort(self, key: str, pending: Pending) -> None:
        if pending.upload_id is not None:
            upload_id, pending.upload_id = pending.upload_id, None
            # An unfinished upload is invisible; if aborting fails, the bucket's lifecycle rule removes it.
            with contextlib.suppress(StorageUnavailable):
                self._call("abort_multipart_upload", Key=self._key(key), UploadId=upload_id)

    def commit(self, staged: StagedObject) -> None:
        pending = staged.handle
        assert isinstance(pending, Pending)
        if pending.body is not None:
            check = {"content-md5": md5_header(pending.body_md5)}
            stored = self._lean.put(self._key(staged.key), pending.body, check)
            pending.body = None
            check_etag(stored, pending.body_md5.hex(), "object")
        elif pending.upload_id is not None:
            expected = multipart_etag(pending.part_md5s) if pending.etag_known else None
            try:
                answer = self._call(
                    "complete_multipart_upload",
                    Key=self._key(staged.key),
                    UploadId=pending.upload_id,
                    MultipartUpload={"Parts": pending.parts},
                )
            except StorageUnavailable as e:
                # a retry after a completion whose answer was lost finds the upload gone: the object is
                # there if its ETag is the one these parts make
                lost = "NoSuchUpload" in str(e)
                answer = self._completed(staged, expected, len(pending.parts)) if lost else None
                if answer is None:
                    raise
            pending.upload_id = None
            check_etag(answer, expected, "multipart object")
        elif pending.copy_from is not None:
            source = {"Bucket": self._bucket, "Key": self._key(pending.copy_from)}
            try:  # a server-side copy; above 8 MiB in parts (UploadPartCopy), so any size works
                self._s3.copy(source, self._bucket, self._key(staged.key))
            except (ClientError, BotoCoreError) as e:
                raise StorageUnavailable("S3 copy failed") from e
            self.delete(pending.copy_from)
            pending.copy_from = None

    def _completed(self, staged: StagedObject, etag: str | None, parts: int) -> dict[str, Any] | None:
        """The object's headers when the bucket holds the multipart upload of this ETag at the key (ETag
        not known: of the staged size, in as many parts; staged keys are new or content addresses, whose
        objects are only ever those bytes)."""
        try:
            head: dict[str, Any] = self._call("head_object", Key=self._key(staged.key))
        except NotFound:
            return None
        return head if is_completed(head, etag, parts, staged.size) else None

    def discard(self, staged: StagedObject) -> None:
        pending = staged.handle
        assert isinstance(pending, Pending)
        pending.body = None
        self._abort(staged.key, pending)
        if pending.copy_from is not None:
            self.delete(pending.copy_from)
            pending.copy_from = None

    def begin_direct(self, temp_key: str, *, size: int, ttl: int) -> DirectUpload:
        """A multipart upload with a presigned URL per part (parts ≥ 8 MiB, at most 10,000)."""
        part_size = direct_part_size(size, base=self._part_size, max_parts=self._max_parts)
        upload_id = self._call("create_multipart_upload", Key=self._key(temp_key))["UploadId"]
        return sign_direct_upload(
            self._signer,
            bucket=self._bucket,
            key=self._key(temp_key),
            upload_id=upload_id,
            size=size,
            part_size=part_size,
            ttl=ttl,
        )

    def finish_direct(self, temp_key: str, handle: str, *, size: int, key: str) -> StagedObject | None:
        """Completes the multipart upload once its parts add up to `size`, then reads the object back
        inside the bucket's network for its md5 (a multipart ETag is not one)."""
        if self.stat(temp_key) is None:
            parts = self._uploaded_parts(temp_key, handle)
            if parts is None or sum(p["Size"] for p in parts) < size:
                return None
            self._call(
                "complete_multipart_upload",
                Key=self._key(temp_key),
                UploadId=handle,
                MultipartUpload={
                    "Parts": [{"ETag": p["ETag"], "PartNumber": p["PartNumber"]} for p in parts]
                },
            )
        digest, received = hashlib.md5(usedforsecurity=False), 0
        for chunk in self.read(temp_key):
            digest.update(chunk)
            received += len(chunk)
        return StagedObject(
            key=key, size=received, md5=digest.hexdigest(), handle=Pending(copy_from=temp_key)
        )

    def _uploaded_parts(self, temp_key: str, upload_id: str) -> list[dict[str, Any]] | None:
        """The parts uploaded so far, None when the multipart upload is gone."""
        key = self._key(temp_key)
        return uploaded_parts(
            lambda marker: self._call("list_parts", Key=key, UploadId=upload_id, PartNumberMarker=marker)
        )

    def read_staged(self, staged: StagedObject) -> Iterator[bytes]:
        pending = staged.handle
        assert isinstance(pending, Pending) and pending.copy_from is not None
        return self.read(pending.copy_from)

    def abort_direct(self, temp_key: str, handle: str) -> None:
        self._abort(temp_key, Pending(upload_id=handle))
        self.delete(temp_key)

    def stat(self, key: str) -> BlobInfo | None:
        try:
            head = self._call("head_object", Key=self._key(key))
        except NotFound:
            return None
        return _blob(key, int(head["ContentLength"]), head)

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            return iter(())
        return self._lean.get(self._key(key), start=start, end=end, chunk_size=CHUNK_SIZE)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._key(prefix)
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield _blob(item["Key"][len(self._prefix) :], int(item["Size"]), item)
        except (ClientError, BotoCoreError) as e:
            raise StorageUnavailable("S3 listing failed") from e

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self._key(key))

    def delete_many(self, keys: Sequence[str]) -> None:
        """DeleteObjects, 1,000 keys per request."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            answer = self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})
            failed = [e for e in answer.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                raise StorageUnavailable(
                    f"S3 could not delete {len(failed)} objects ({failed[0].get('Code')})"
                )

    def remove_stale_staging(self, older_than: float) -> int:
        """Aborts multipart uploads under the prefix begun before `older_than` (a lifecycle rule on the
        bucket does the same; this covers buckets without one)."""
        removed = 0
        try:
            pages = self._s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=self._bucket, Prefix=self._prefix
            )
            stale = [
                (upload["Key"], upload["UploadId"])
                for page in pages
                for upload in page.get("Uploads", [])
                if upload["Initiated"].timestamp() < older_than
            ]
        except (ClientError, BotoCoreError) as e:
            raise StorageUnavailable("S3 listing of multipart uploads failed") from e
        for key, upload_id in stale:
            with contextlib.suppress(StorageUnavailable, NotFound):
                self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
                removed += 1
        return removed

    def sign_download(self, key: str, *, ttl: int, disposition: str | None = None) -> SignedURL:
        return sign_download(
            self._signer, bucket=self._bucket, key=self._key(key), ttl=ttl, disposition=disposition
        )

    def check(self) -> None:
        self._call("head_bucket", patient=False)  # a readiness probe wants the answer now
