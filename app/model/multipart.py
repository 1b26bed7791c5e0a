"""S3 multipart uploads through the door: S3's limits, a received part, and the ETags S3 gives them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from app.model.upload_sessions import upload_key

MIN_PART_SIZE = 5 * 2**20  # every part but the last (S3's EntityTooSmall)
MAX_PART_SIZE = 5 * 2**30  # S3's largest part
MAX_PART_NUMBER = 10_000
MULTIPART_KIND = "s3"  # upload_sessions.kind of a door upload ("direct": the JSON API's)


@dataclass(frozen=True)
class UploadedPart:
    """A part as it was received: its blob, size and md5 (its ETag)."""

    number: int
    key: str
    size: int
    md5: str
    uploaded_at: datetime


def part_key(session_id: str, number: int, attempt: str) -> str:
    """Storage key of one attempt at a part: each its own blob, so a part sent again never overwrites
    bytes that a concurrent completion may be reading."""
    return f"{parts_prefix(session_id)}{number}.{attempt}"


def parts_prefix(session_id: str) -> str:
    """Where a door upload's parts wait: under the upload's key, outside every project's prefix."""
    return upload_key(session_id) + "/"


def multipart_etag(md5s: list[str]) -> str:
    """The ETag S3 gives a completed multipart upload: the md5 of its parts' md5s, and their count."""
    joined = b"".join(bytes.fromhex(md5) for md5 in md5s)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(md5s)}"
