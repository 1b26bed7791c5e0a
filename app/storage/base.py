"""The storage Protocol every backend implements; value objects in and out, never SDK types."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.model.objects import BlobInfo, SignedURL

CHUNK_SIZE = 1024 * 1024


@dataclass
class StagedObject:
    """Bytes written but not yet visible: commit makes them visible at `key`, discard drops them."""

    key: str
    size: int
    md5: str
    handle: object  # backend-specific (temp file path, multipart upload id, ...)


@dataclass(frozen=True)
class UploadPart:
    """One byte range of a direct upload and the signed URL the client PUTs it to."""

    number: int
    offset: int
    size: int
    url: str


@dataclass(frozen=True)
class DirectUpload:
    """How a client sends a file straight to storage: `parts` (PUT each range to its URL), or
    `gcs_resumable` (POST `url` with `headers`, then PUT the bytes to the session URI it answers with)."""

    kind: str
    handle: str  # the backend's own id for complete/abort (an S3 multipart upload id), else ""
    part_size: int
    parts: list[UploadPart] = field(default_factory=list)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class StorageBackend(Protocol):
    """A bucket-like store addressed by keys."""

    def stage(self, key: str, chunks: Iterable[bytes]) -> StagedObject:
        """Stream chunks into hidden storage computing size and md5; on any error nothing is kept."""
        ...

    def commit(self, staged: StagedObject) -> None:
        """Make a staged object visible at its key, atomically replacing what was there."""
        ...

    def discard(self, staged: StagedObject) -> None:
        """Drop a staged object; idempotent."""
        ...

    def stat(self, key: str) -> BlobInfo | None:
        """Size and md5 of a stored blob, None when absent."""
        ...

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes [start, end) of a blob; stops reading storage when the iterator is closed."""
        ...

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Every blob whose key starts with prefix, in no promised order (SeaweedFS is not byte-ordered)."""
        ...

    def copy(self, source_key: str, destination_key: str) -> None:
        """Copy a blob inside the store (its bytes never pass through the app), atomically replacing what
        was at destination_key; NotFound when the source is absent."""
        ...

    def delete(self, key: str) -> None:
        """Delete a blob; deleting an absent blob is not an error."""
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete blobs in as few requests as the store allows; absent ones are not an error."""
        ...

    def remove_stale_staging(self, older_than: float) -> int:
        """Drop unfinished uploads begun before the epoch time `older_than` (a crash leaves them);
        returns how many."""
        ...

    def sign_download(self, key: str, *, ttl: int, disposition: str | None = None) -> SignedURL:
        """A URL valid for ttl seconds that lets its holder GET the blob (Range allowed); with a
        disposition, the response carries it as Content-Disposition (browser downloads)."""
        ...

    def check(self) -> None:
        """Raise StorageUnavailable when the store cannot be reached."""
        ...

    def begin_direct(self, temp_key: str, *, size: int, ttl: int) -> DirectUpload:
        """Signed URLs that let a client upload `size` bytes to temp_key without the app seeing them."""
        ...

    def finish_direct(self, temp_key: str, handle: str, *, size: int, key: str) -> StagedObject | None:
        """The uploaded bytes as a staged object for `key` (commit copies them there, discard drops them),
        or None while fewer than `size` bytes have arrived (the client may go on uploading)."""
        ...

    def abort_direct(self, temp_key: str, handle: str) -> None:
        """Drop whatever a direct upload left at temp_key; idempotent."""
        ...

    def read_staged(self, staged: StagedObject) -> Iterator[bytes]:
        """The bytes of a staged object that finish_direct made (a `.dir` manifest is checked before it
        is committed)."""
        ...

    def assemble(self, part_keys: Sequence[str], key: str, *, temp_key: str) -> StagedObject:
        """The blobs at part_keys joined in order, staged for `key` (commit makes them visible there,
        discard drops them) with the whole's size and md5; the parts stay. Inside the store where it
        can (S3 UploadPartCopy: every part but the last of at least 5 MiB; GCS compose through temp_key)."""
        ...


class PartBuffers:
    """Part buffers the uploads of one process share: made on demand up to `count`, then reused, so the
    memory for parts is bounded whatever the number of concurrent uploads (a taker waits for a free one),
    and never handed back to the allocator to fragment. A taker that waited `patience` seconds (buffers
    held by clients that upload slowly) gets an extra buffer, dropped when given back: slow uploaders
    cannot stall everyone else's."""

    def __init__(self, count: int, *, patience: float = 30.0) -> None:
        self._count = count
        self._patience = patience
        self._made = 0
        self._free: list[bytearray] = []
        self._lent: dict[int, bytearray] = {}  # by id(): a buffer is lent to one taker at a time
        self._changed = threading.Condition()

    def take(self, size: int) -> bytearray:
        """A buffer of at least `size` bytes (contents undefined); waits while all are taken."""
        deadline = time.monotonic() + self._patience
        with self._changed:
            while not self._free and self._made >= self._count and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            if self._free:
                buffer = self._free.pop()
            else:
                self._made += 1
                buffer = bytearray(size)
            self._lent[id(buffer)] = buffer
        if len(buffer) < size:  # the part schedule moved to larger parts
            buffer.extend(bytes(size - len(buffer)))
        return buffer

    def give(self, buffer: bytearray) -> None:
        """Return a buffer taken before; RuntimeError for one that is not lent (given back twice, or
        never taken): pooled twice, it would be lent to two uploads at once and mix their bytes."""
        with self._changed:
            if self._lent.get(id(buffer)) is not buffer:
                raise RuntimeError("a part buffer that is not lent was given back")
            del self._lent[id(buffer)]
            if self._made > self._count:  # an extra one
                self._made -= 1
                return
            self._free.append(buffer)
            self._changed.notify()
