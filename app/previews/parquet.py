"""Parquet previews: the schema from the footer and the first rows of the first row group, read through
ranged reads (a buffered stream, so only the first pages of the shown columns), under a cap of bytes."""

from __future__ import annotations

from typing import Any

from app.model.sizes import human_size
from app.previews.base import NotPreviewable, Preview, Read, cell
from app.previews.ranged import BudgetExceeded, RangedFile

ROWS = 50
COLUMNS = 30
MAX_BYTES = 16 * 1024 * 1024  # footer and pages together
STREAM_BUFFER = 64 * 1024  # the reader asks for pages in pieces this size, not whole column chunks


def preview_parquet(size: int, read: Read) -> Preview:
    """The first ROWS rows of the first COLUMNS columns; the schema alone when they take more than
    MAX_BYTES to read; NotPreviewable for a file that is no Parquet or whose footer is that large."""
    import pyarrow as pa  # type: ignore[import-untyped]  # imported when a Parquet file is previewed
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    source = RangedFile(read, size, budget=MAX_BYTES)
    try:
        parquet = pq.ParquetFile(source, buffer_size=STREAM_BUFFER, pre_buffer=False)
        schema = parquet.schema_arrow
    except BudgetExceeded as e:
        raise NotPreviewable(f"Its footer is larger than {human_size(MAX_BYTES)}.") from e
    except (pa.ArrowException, OSError, ValueError) as e:
        raise NotPreviewable("It is not a readable Parquet file.") from e
    names = schema.names[:COLUMNS]
    columns = tuple(cell(name) for name in names)
    types = tuple(cell(str(schema.field(i).type)) for i in range(len(names)))
    total = parquet.metadata.num_rows
    more = f" The first {len(names)} of {len(schema.names)} columns." if len(schema.names) > COLUMNS else ""
    try:
        batches = (
            parquet.iter_batches(batch_size=ROWS, row_groups=[0], columns=names, use_threads=False)
            if parquet.metadata.num_row_groups
            else iter(())
        )
        batch = next(batches, None)
    except BudgetExceeded:
        note = (
            f"Its first rows take more than {human_size(MAX_BYTES)} to read: the columns, with "
            f"{total:,} rows in {parquet.metadata.num_row_groups:,} row groups."
        )
        return Preview(
            kind="schema", note=note, columns=columns, column_types=types, bytes_read=source.bytes_read
        )
    except (pa.ArrowException, OSError, ValueError) as e:
        raise NotPreviewable("Its first row group cannot be read.") from e
    records = batch.to_pylist() if batch is not None else []
    rows = tuple(tuple(_cell(record[name]) for name in names) for record in records)
    shown = f"{len(rows)} row" + ("" if len(rows) == 1 else "s")
    note = (f"All {shown}." if len(rows) == total else f"The first {shown} of {total:,}.") + more
    return Preview(
        kind="table", note=note, columns=columns, column_types=types, rows=rows, bytes_read=source.bytes_read
    )


def _cell(value: Any) -> str:
    return "null" if value is None else cell(value.hex() if isinstance(value, bytes) else str(value))
