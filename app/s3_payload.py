"""The checks an S3 request body passes as it streams: its x-amz-content-sha256, its Content-MD5, its
x-amz-checksum-<algorithm> (a header, or a trailer of an aws-chunked body) and its declared length.
crc32 (zlib), crc32c (google-crc32c), sha1 and sha256 are computed; crc64nvme only with awscrt."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from app.s3_errors import S3Error

ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        import google_crc32c

        self._extend = google_crc32c.extend
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._extend(self._value, data)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class _Crc64Nvme:
    def __init__(self) -> None:
        from awscrt import checksums  # type: ignore[import-not-found]

        self._crc = checksums.crc64nvme
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._crc(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(8, "big")


def digest_for(algorithm: str) -> _Digest | None:
    """A running checksum of the algorithm, None when none can be computed here (crc64nvme without
    awscrt: the registry still computes and keeps the object's md5)."""
    makers: dict[str, Callable[[], _Digest]] = {
        "crc32": _Crc32,
        "crc32c": _Crc32c,
        "crc64nvme": _Crc64Nvme,
        "sha1": hashlib.sha1,
        "sha256": hashlib.sha256,
    }
    try:
        return makers[algorithm]()
    except ImportError:
        return None


@dataclass
class PayloadChecks:
    """What the body must match: sha256 hex (signed payload), Content-MD5 (base64), the checksum headers
    (algorithm → base64), the checksum trailers declared in x-amz-trailer, and the decoded length."""

    sha256_hex: str | None = None
    content_md5: str | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    trailer_algorithms: tuple[str, ...] = ()
    length: int | None = None


def checksum_algorithm(header: str) -> str | None:
    """The algorithm an `x-amz-checksum-<algorithm>` header names, None for any other header."""
    name = header.lower()
    if not name.startswith("x-amz-checksum-"):
        return None
    algorithm = name.removeprefix("x-amz-checksum-")
    return algorithm if algorithm in ALGORITHMS else None


def content_md5(value: str) -> bytes:
    """The 16 bytes a Content-MD5 header gives; 400 InvalidDigest when it is not base64 of 16 bytes."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified is not valid (base64 of 16 bytes)")
    return raw


def checked(
    body: Iterable[bytes], checks: PayloadChecks, trailers: Callable[[], dict[str, str]] = dict
) -> Iterator[bytes]:
    """The body, passed through; at its end each check is made (400 XAmzContentSHA256Mismatch, BadDigest,
    IncompleteBody), before the consumer sees the iteration end, so nothing is committed on a mismatch."""
    sha256 = hashlib.sha256() if checks.sha256_hex else None
    md5_wanted = content_md5(checks.content_md5) if checks.content_md5 is not None else None
    md5 = hashlib.md5(usedforsecurity=False) if md5_wanted is not None else None
    algorithms = dict.fromkeys([*checks.checksums, *checks.trailer_algorithms])
    running = {a: d for a in algorithms if (d := digest_for(a)) is not None}
    size = 0
    for chunk in body:
        size += len(chunk)
        if sha256 is not None:
            sha256.update(chunk)
        if md5 is not None:
            md5.update(chunk)
        for digest in running.values():
            digest.update(chunk)
        yield chunk
    if checks.length is not None and size != checks.length:
        raise S3Error(
            "IncompleteBody", f"The body has {size} bytes, not the {checks.length} its length header says"
        )
    if sha256 is not None and not hmac.compare_digest(sha256.hexdigest(), str(checks.sha256_hex)):
        raise S3Error(
            "XAmzContentSHA256Mismatch", "The provided x-amz-content-sha256 header does not match the body"
        )
    if md5 is not None and md5_wanted is not None and md5.digest() != md5_wanted:
        raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received")
    given = {**checks.checksums, **{a: v for a, v in trailers().items() if a in algorithms}}
    for algorithm, digest in running.items():
        wanted = given.get(algorithm)
        if wanted is None:
            raise S3Error("InvalidRequest", f"x-amz-checksum-{algorithm} was declared but not sent")
        if base64.b64encode(digest.digest()).decode() != wanted.strip():
            raise S3Error(
                "BadDigest", f"The {algorithm.upper()} you specified did not match the calculated checksum"
            )
