"""Presigned S3 URLs (SigV4), without the SDK: a download of one object, and one URL per part of a direct
upload. The signing client (boto3's, built by S3Backend for the address clients use) is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from app.model.objects import SignedURL
from app.storage.base import DirectUpload, UploadPart

MIB = 1024 * 1024


class Presigner(Protocol):
    """What signing needs of an S3 client: botocore's `generate_presigned_url`."""

    def generate_presigned_url(self, ClientMethod: str, Params: dict[str, Any], ExpiresIn: int) -> str: ...


def sign_download(
    signer: Presigner, *, bucket: str, key: str, ttl: int, disposition: str | None = None
) -> SignedURL:
    """A URL that GETs the object at `key` (the bucket's own key) for `ttl` seconds."""
    params = {"Bucket": bucket, "Key": key}
    if disposition:
        params["ResponseContentDisposition"] = disposition
    url = signer.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl)
    return SignedURL(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=ttl))


def direct_part_size(size: int, *, base: int, max_parts: int) -> int:
    """Parts of at least `base`, whole MiB, few enough for S3's limit on a multipart upload."""
    return max(base, -(-size // max_parts // MIB) * MIB)


def sign_direct_upload(
    signer: Presigner, *, bucket: str, key: str, upload_id: str, size: int, part_size: int, ttl: int
) -> DirectUpload:
    """A direct upload of `size` bytes to the open multipart upload: a presigned URL per part."""
    parts = []
    for number, offset in enumerate(range(0, max(size, 1), part_size), start=1):
        params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
        url = signer.generate_presigned_url("upload_part", Params=params, ExpiresIn=ttl)
        parts.append(UploadPart(number=number, offset=offset, size=min(part_size, size - offset), url=url))
    return DirectUpload(kind="parts", handle=upload_id, part_size=part_size, parts=parts)
