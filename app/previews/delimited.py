"""CSV and TSV previews: the column names and first rows, from the first bytes of the file only (read in
growing windows up to a cap, cut at the last full line; the dialect sniffed from what was read)."""

from __future__ import annotations

import csv
import io
from itertools import islice

from app.model.sizes import human_size
from app.previews.base import NotPreviewable, Preview, Read, cell, decode_text, looks_binary, read_bytes

ROWS = 50  # rows shown under the column names
COLUMNS = 50  # columns shown
FIRST_WINDOW = 64 * 1024  # the first read; each next one doubles, up to MAX_BYTES in all
MAX_BYTES = 1024 * 1024
SNIFF_CHARS = 64 * 1024
DELIMITERS = ",;\t|"


def preview_delimited(size: int, read: Read, *, delimiter: str | None) -> Preview:
    """The first ROWS rows under the header row; `delimiter` None: sniffed (a comma when unsure)."""
    data, complete = _head(size, read)
    if looks_binary(data):
        raise NotPreviewable("It holds binary data (NUL bytes), not delimited text.")
    shown = data if complete else data[: data.rfind(b"\n") + 1]
    if not shown:
        raise NotPreviewable(f"Its first line is longer than {human_size(MAX_BYTES)}: too long to preview.")
    text = decode_text(shown, cut=False)
    dialect = _dialect(text, delimiter)
    try:
        records = list(islice(csv.reader(io.StringIO(text, newline=""), dialect), ROWS + 2))
    except csv.Error as e:
        raise NotPreviewable(f"It is not valid delimited text ({e}).") from e
    if not complete and len(records) <= ROWS + 1:
        records = records[:-1]  # the last one may be a quoted field cut at the end of what was read
    if not records:
        raise NotPreviewable("It has no complete row in its first bytes.")
    header, body = records[0], records[1 : ROWS + 1]
    width = min(max(len(r) for r in [header, *body]), COLUMNS)
    columns = tuple(cell(header[i]) if i < len(header) else "" for i in range(width))
    rows = tuple(tuple(cell(r[i]) if i < len(r) else "" for i in range(width)) for r in body)
    return Preview(
        kind="table",
        note=_note(len(rows), complete and len(records) <= ROWS + 1, max(len(r) for r in records), width),
        columns=columns,
        rows=rows,
        bytes_read=len(data),
    )


def _head(size: int, read: Read) -> tuple[bytes, bool]:
    """The first bytes: enough for the header and ROWS rows (by line ends), the whole file, or MAX_BYTES;
    and whether they are the whole file."""
    data, window = b"", FIRST_WINDOW
    while len(data) < min(size, MAX_BYTES) and data.count(b"\n") <= ROWS + 1:
        stop = min(size, MAX_BYTES, len(data) + window)
        got = read_bytes(read, len(data), stop)
        data += got
        if len(got) < stop - (len(data) - len(got)):
            return data, True  # the object ends sooner than the index says
        window *= 2
    return data, len(data) >= size


def _dialect(text: str, delimiter: str | None) -> type[csv.Dialect] | csv.Dialect:
    if delimiter is not None:
        return csv.excel_tab if delimiter == "\t" else csv.excel
    try:
        return csv.Sniffer().sniff(text[:SNIFF_CHARS], delimiters=DELIMITERS)
    except csv.Error:  # one column, or nothing regular enough to tell
        return csv.excel


def _note(shown: int, whole: bool, columns: int, width: int) -> str:
    rows = f"{shown} row" + ("" if shown == 1 else "s")
    note = f"All {rows}." if whole else f"The first {rows}."
    if columns > width:
        note += f" The first {width} of {columns} columns."
    return note
