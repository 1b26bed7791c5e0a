"""S3Backend.assemble: parts already in the bucket joined into one object by a multipart upload of
UploadPartCopy parts (the bytes stay in the bucket), while the parts are read back for the whole's md5."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from app.errors import StorageUnavailable
from app.storage.base import CHUNK_SIZE, StagedObject
from app.storage.s3_parts import PARTS_IN_FLIGHT, Pending

if TYPE_CHECKING:
    from app.storage.s3 import S3Backend

_MD5 = re.compile("[0-9a-f]{32}")
COPIES_IN_FLIGHT = PARTS_IN_FLIGHT * 2  # UploadPartCopy holds no bytes in the app: only a thread each


def assemble_parts(backend: S3Backend, part_keys: Sequence[str], key: str, *, temp_key: str) -> StagedObject:
    """A multipart upload at `key` whose parts are copies of part_keys (S3: every part but the last of at
    least 5 MiB), left open for commit (CompleteMultipartUpload) or discard (abort). The parts are read
    back meanwhile, a MiB at a time, for the md5s (_check_copies says what the copies' ETags prove)."""
    upload_id = str(backend._call("create_multipart_upload", Key=backend._key(key))["UploadId"])
    pending = Pending(upload_id=upload_id)
    digest, size = hashlib.md5(usedforsecurity=False), 0
    try:
        with ThreadPoolExecutor(max_workers=COPIES_IN_FLIGHT) as pool:
            copies = [
                pool.submit(_copy_part, backend, key, upload_id, number, part)
                for number, part in enumerate(part_keys, start=1)
            ]
            try:
                for part in part_keys:
                    answer = backend._call("get_object", Key=backend._key(part))
                    part_digest = hashlib.md5(usedforsecurity=False)
                    try:
                        for chunk in answer["Body"].iter_chunks(CHUNK_SIZE):
                            digest.update(chunk)
                            part_digest.update(chunk)
                            size += len(chunk)
                    finally:
                        answer["Body"].close()
                    pending.part_md5s.append(part_digest.digest())
                pending.parts = [copy.result() for copy in copies]
            finally:
                for copy in copies:
                    copy.cancel()
        pending.etag_known = _check_copies(pending)
    except BaseException:
        backend._abort(key, pending)
        raise
    return StagedObject(key=key, size=size, md5=digest.hexdigest(), handle=pending)


def _copy_part(backend: S3Backend, key: str, upload_id: str, number: int, part_key: str) -> dict[str, Any]:
    answer = backend._call(
        "upload_part_copy",
        Key=backend._key(key),
        UploadId=upload_id,
        PartNumber=number,
        CopySource={"Bucket": backend._bucket, "Key": backend._key(part_key)},
    )
    return {"ETag": answer.get("CopyPartResult", {}).get("ETag", ""), "PartNumber": number}


def _check_copies(pending: Pending) -> bool:
    """Whether every copy's ETag is its part's md5 (AWS, MinIO: then commit checks the object's ETag);
    False when a bucket gives copies ETags of its own (SeaweedFS: its chunks'), which say nothing of the
    bytes; StorageUnavailable when an ETag that is an md5 is not the part's."""
    copied = [str(part["ETag"]).strip('"') for part in pending.parts]
    if copied == [md5.hex() for md5 in pending.part_md5s]:
        return True
    if any(
        _MD5.fullmatch(etag) for etag, md5 in zip(copied, pending.part_md5s, strict=True) if etag != md5.hex()
    ):
        raise StorageUnavailable("S3 copied parts that differ from what the registry read; nothing was kept")
    return False
