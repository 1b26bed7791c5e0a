"""What every preview kind shares: the Preview value, the ranged reader it is given, and the one error a
kind raises for a file it cannot show (the page says why and offers the download)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

# `Registry.open`'s reader: bytes [start, stop) of the object, streamed from storage
Read = Callable[[int, int], Iterator[bytes]]

CELL_CHARS = 200  # a table cell longer than this is cut (…)


class NotPreviewable(Exception):
    """The file cannot be shown; the message says why, in a sentence for the page."""


@dataclass(frozen=True)
class Preview:
    """What the object page shows: `kind` is table, schema, image, markdown, json, text or none (then
    `note` says why); `note` otherwise says what part of the file is shown."""

    kind: str
    note: str = ""
    columns: tuple[str, ...] = ()
    column_types: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    text: str = ""
    html: str = ""  # sanitised Markdown: the only preview the template marks safe
    image_url: str = ""  # a data: URL
    bytes_read: int = 0


def read_bytes(read: Read, start: int, stop: int) -> bytes:
    """Bytes [start, stop) in one ranged read, the stream closed as soon as they are in."""
    if stop <= start:
        return b""
    stream = read(start, stop)
    try:
        return b"".join(stream)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def cell(value: str) -> str:
    """A table cell's text, cut at CELL_CHARS."""
    return value if len(value) <= CELL_CHARS else value[: CELL_CHARS - 1] + "…"


def decode_text(data: bytes, *, cut: bool) -> str:
    """UTF-8 text (a BOM dropped, bad bytes as U+FFFD); `cut`: the bytes end mid-file, so a character
    split at the end is dropped rather than shown as U+FFFD."""
    text = data.decode("utf-8-sig", errors="replace")
    return text.rstrip("\ufffd") if cut else text


def looks_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KiB: what git and file(1) take for binary."""
    return b"\x00" in data[:8192]
