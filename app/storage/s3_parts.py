"""Streamed multipart uploads to S3, without the SDK: the part-size schedule, the buffers a stream's parts
fill (shared with the worker's other uploads) and the checks that S3 kept the bytes as they streamed in
(each part's md5, or its CRC-32 where the bucket verifies one)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import FileTooLarge, StorageUnavailable
from app.model.sizes import human_size
from app.storage.base import PartBuffers

PART_SIZE = 8 * 1024 * 1024
PARTS_IN_FLIGHT = 2  # per upload: at most this many parts on their way (plus the one being filled)
PART_BUFFERS = 4  # per worker process, shared by its uploads: 32 MiB of 8 MiB parts
SMALL_BODY = 1024 * 1024  # bodies up to this size gather in a buffer of their own
MAX_PARTS = 10_000  # S3's limit per multipart upload

StartUpload = Callable[[], str]  # creates the multipart upload: its UploadId
SendPart = Callable[[str, int, "bytes | bytearray", bytes], dict[str, Any]]  # (id, number, body, digest)


class PartDigest(Protocol):
    """What a part's bytes are checked by as they stream in: hashlib's md5, or Crc32."""

    def update(self, data: bytes | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...


class Crc32:
    """zlib's CRC-32 with hashlib's interface; the bucket checks it as x-amz-checksum-crc32 (base64 of its
    4 bytes, big-endian). A fifth of md5's CPU; only sent to a bucket shown to verify it."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | memoryview, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def new_md5() -> PartDigest:
    return hashlib.md5(usedforsecurity=False)


def streamed_part_size(number: int, base: int, max_parts: int) -> int:
    """Part `number` (from 1) of an upload of unknown length: `base` for the first half of the allowed
    parts, then twice, then four times as large, so a stream can reach ~19,000 × base (148 GiB with 8 MiB)
    while memory stays at a few parts until the upload is very large."""
    if number <= max_parts // 2:
        return base
    return base * 2 if number <= max_parts * 8 // 10 else base * 4


def _streamed_part(number: int, base: int, max_parts: int) -> int:
    """The size of part `number` of a streamed upload; 413 past the last part S3 allows."""
    if number > max_parts:
        limit = sum(streamed_part_size(n, base, max_parts) for n in range(1, max_parts + 1))
        raise FileTooLarge(
            f"File too large for a streamed upload to S3: the limit is {human_size(limit)}; "
            "use a direct upload session (POST /api/v1/projects/:id/uploads)"
        )
    return streamed_part_size(number, base, max_parts)


@dataclass
class Pending:
    """What stage() left for commit(): a small body to PUT (and its md5 as streamed), an open multipart
    upload (and each part's md5 as streamed, unless its parts were checked by CRC-32), or (a direct
    upload) a complete object to copy into place."""

    body: bytes | None = None
    body_md5: bytes = b""
    upload_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    part_md5s: list[bytes] = field(default_factory=list)
    copy_from: str | None = None
    # the parts' ETags are their md5s (not so where a bucket gives a copied part its source's ETag:
    # SeaweedFS; nor known when parts went with a CRC-32), so the object's ETag is known in advance and
    # checked
    etag_known: bool = True


def md5_header(digest: bytes) -> str:
    """A Content-MD5 header's value."""
    return base64.b64encode(digest).decode()


def check_etag(answer: dict[str, Any], expected: str | None, what: str) -> None:
    """StorageUnavailable unless S3's ETag for what it stored is `expected` (computed from the stream;
    None: not known in advance, see Pending.etag_known). Objects encrypted with SSE-KMS or SSE-C have ETags
    that are not MD5s (AWS's documentation): there the Content-MD5 that S3 verifies on every request is
    the check."""
    if expected is None:
        return
    if answer.get("ServerSideEncryption", "").startswith("aws:kms") or answer.get("SSECustomerAlgorithm"):
        return
    etag = str(answer.get("ETag", "")).strip('"')
    if etag != expected:
        raise StorageUnavailable(
            f"S3 stored different bytes than the registry sent ({what}: ETag {etag or 'missing'}, expected "
            f"{expected}); nothing was kept, try again"
        )


def part_check(digest: bytes, crc32: bool) -> dict[str, str]:
    """The signed header a part's bytes are checked by: its CRC-32, or its Content-MD5."""
    if crc32:
        return {"x-amz-checksum-crc32": base64.b64encode(digest).decode()}
    return {"content-md5": md5_header(digest)}


def is_completed(head: dict[str, Any], etag: str | None, parts: int, size: int) -> bool:
    """Whether HeadObject's answer shows the multipart upload of this ETag (None: not known in advance,
    then of `size` bytes in as many `parts`) completed."""
    found = str(head.get("ETag", "")).strip('"')
    if etag is None:
        return found.endswith(f"-{parts}") and head.get("ContentLength") == size
    return found == etag


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: the md5 of its parts' md5s, and their count."""
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


class StreamedParts:
    """One streamed upload's parts: fills buffers from the body and sends each full one in the background
    (S3Backend.stage). A buffer has one owner at a time: this object while it fills it, then the part's
    upload, which gives it back to the pool when it is done (sent, failed or cancelled)."""

    def __init__(
        self,
        *,
        pending: Pending,
        pool: ThreadPoolExecutor,
        buffers: PartBuffers,
        part_size: int,
        max_parts: int,
        start: StartUpload,
        send: SendPart,
        part_digest: Callable[[], PartDigest] = new_md5,
    ) -> None:
        self._pending, self._pool, self._buffers = pending, pool, buffers
        self._part_size, self._max_parts = part_size, max_parts
        self._start, self._send, self._part_digest = start, send, part_digest
        self._current: bytearray | None = bytearray()  # the body's own buffer until it outgrows it
        self._filled, self._pooled = 0, False
        self._digest = part_digest()  # of the current part's bytes as they came in
        self._uploads: list[Future[dict[str, Any]]] = []

    def _part(self) -> int:
        return _streamed_part(len(self._uploads) + 1, self._part_size, self._max_parts)

    def write(self, view: memoryview) -> None:
        """Take the next bytes of the body; a part that is full goes up in the background."""
        while view:
            part = self._part()
            taken = min(part - self._filled, len(view))
            current = self._room(part, taken)
            piece = view[:taken]
            current[self._filled : self._filled + taken] = piece  # grows a buffer that is short
            self._digest.update(piece)
            self._filled, view = self._filled + taken, view[taken:]
            if self._filled == part:
                self._send_current()

    def finish(self, body_md5: bytes) -> None:
        """Send what is left: the whole body (one PUT at commit) or the last part; wait for every part."""
        if self._pending.upload_id is None:
            assert self._current is not None
            self._pending.body = bytes(memoryview(self._current)[: self._filled])
            self._pending.body_md5 = body_md5
        elif self._filled:
            self._part()  # the last part must fit too
            self._send_current()
        self._pending.parts = [future.result() for future in self._uploads]

    def cancel(self) -> None:
        """Cancel the parts not sent yet and wait for those on their way."""
        for future in self._uploads:
            future.cancel()  # a cancelled part's done-callback gives its buffer back
        wait(self._uploads)

    def release(self) -> None:
        """Give back the part buffer being filled, if any (sent ones come back when sent)."""
        current, self._current = self._current, None
        if self._pooled and current is not None:
            self._buffers.give(current)

    def _room(self, part: int, taken: int) -> bytearray:
        """The buffer the next `taken` bytes go to: a part buffer once the body outgrows its own, taken
        when bytes arrive for it, not before."""
        if self._current is None:
            self._current = self._next_buffer(part)
        elif not self._pooled and (self._filled + taken > SMALL_BODY or self._filled + taken == part):
            small = self._current
            self._current, self._pooled = self._next_buffer(part), True
            self._current[: self._filled] = small[: self._filled]
        return self._current

    def _next_buffer(self, size: int) -> bytearray:
        """A part buffer, once fewer than PARTS_IN_FLIGHT of this upload's parts are on their way."""
        sending = [f for f in self._uploads if not f.done()]
        if len(sending) >= PARTS_IN_FLIGHT:
            wait(sending, return_when=FIRST_COMPLETED)
        return self._buffers.take(size)

    def _send_current(self) -> None:
        """Upload the current buffer's bytes as the next part. Ownership of the buffer passes first, so
        that whatever raises below, it is given back once: by the part's done-callback, or here."""
        current, length, digest = self._current, self._filled, self._digest.digest()
        assert current is not None
        self._current, self._filled, self._digest = None, 0, self._part_digest()
        pending, buffers = self._pending, self._buffers
        owned: bytearray | None = current  # still ours to give back
        try:
            if pending.upload_id is None:
                pending.upload_id = self._start()
            body: bytes | bytearray = current
            if length != len(current):  # a last part, or a buffer grown for larger parts
                body, owned = bytes(memoryview(current)[:length]), None
                buffers.give(current)
            number = len(self._uploads) + 1
            future = self._pool.submit(self._send, pending.upload_id, number, body, digest)
        except BaseException:
            if owned is not None:
                buffers.give(owned)
            raise
        if owned is not None:
            future.add_done_callback(lambda _: buffers.give(current))
        self._uploads.append(future)
        pending.part_md5s.append(digest)
        for failed in (f for f in self._uploads if f.done() and f.exception()):
            failed.result()  # stop reading the client as soon as a part failed


def uploaded_parts(list_page: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Every part of a multipart upload, page by page (`list_page(marker)`: ListParts after that part
    number); None when the upload is gone."""
    parts: list[dict[str, Any]] = []
    marker = 0
    while True:
        try:
            page = list_page(marker)
        except StorageUnavailable as e:
            if "NoSuchUpload" in str(e):
                return None
            raise
        parts += page.get("Parts", [])
        if not page.get("IsTruncated"):
            return parts
        marker = int(page["NextPartNumberMarker"])
