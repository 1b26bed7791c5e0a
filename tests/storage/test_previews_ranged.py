"""Previews read byte ranges of every backend (local disk, S3 on moto and SeaweedFS, GCS on both
emulators), not the whole object: a CSV from its first 64 KiB, a Parquet file from its footer and its
first row group's pages, with the bytes each backend really yielded counted."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from app.previews.choose import preview
from scripts.bench.preview_bytes import CountingStorage

ROWS_PER_GROUP = 20_000


def _store(backend: object, key: str, body: bytes) -> CountingStorage:
    backend.commit(backend.stage(key, [body]))  # type: ignore[attr-defined]
    return CountingStorage(backend)  # type: ignore[arg-type]


def test_a_csv_is_previewed_from_its_first_bytes(backend: object) -> None:
    body = ("id,name\n" + "".join(f"{i},row-{i}\n" for i in range(200_000))).encode()  # ~2.6 MB
    counted = _store(backend, "files/md5/aa/csv", body)
    got = preview("rows.csv", len(body), counted.reader("files/md5/aa/csv"))
    assert got.kind == "table" and got.columns == ("id", "name") and got.rows[49] == ("49", "row-49")
    assert counted.bytes == 64 * 1024 and counted.reads == 1


def test_a_parquet_file_is_previewed_from_its_footer_and_first_row_group(backend: object) -> None:
    groups = 8
    table = pa.table(
        {
            "id": pa.array(range(groups * ROWS_PER_GROUP), pa.int64()),
            "label": [f"label-{i}" for i in range(groups * ROWS_PER_GROUP)],
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=ROWS_PER_GROUP, compression="none", use_dictionary=False)
    body = out.getvalue()
    counted = _store(backend, "files/md5/bb/parquet", body)
    got = preview("table.parquet", len(body), counted.reader("files/md5/bb/parquet"))
    assert got.kind == "table" and got.columns == ("id", "label")
    assert got.rows[3] == ("3", "label-3") and len(got.rows) == 50
    assert counted.bytes == got.bytes_read < len(body) // 4  # the footer and one of 8 row groups at most
