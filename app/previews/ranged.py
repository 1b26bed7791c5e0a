"""A read-only, seekable file over an object's ranged reads, with a cap on the bytes it may read in all:
what lets a Parquet reader fetch a footer and a few pages instead of the file."""

from __future__ import annotations

import io

from app.previews.base import Read, read_bytes


class BudgetExceeded(Exception):
    """A read would take the file past its cap of bytes read."""


class RangedFile(io.RawIOBase):
    """`read(n)` at the current position is one ranged read of the object; `bytes_read` counts them."""

    def __init__(self, read: Read, size: int, *, budget: int) -> None:
        super().__init__()
        self._read = read
        self._size = size
        self._budget = budget
        self._position = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        stop = self._size if size is None or size < 0 else min(self._size, self._position + size)
        if stop <= self._position:
            return b""
        if self.bytes_read + stop - self._position > self._budget:
            raise BudgetExceeded(f"more than {self._budget} bytes")
        data = read_bytes(self._read, self._position, stop)
        self._position += len(data)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
