"""Bytes read from the bucket, and time, to preview a 1 GiB CSV and a 1 GiB Parquet file: the local-disk
backend behind a wrapper that counts every byte its `read` yields (the bytes a ranged GET to S3 or GCS
would transfer). The CSV is sparse (its rows, then a hole); the Parquet file is written for real, in row
groups of 64 MiB (an id, a label and a 1 KiB payload a row, uncompressed). The tests reuse these."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from app.previews.base import Preview, Read
from app.previews.choose import preview
from app.storage.local import LocalBackend

GIB = 1024**3


class CountingStorage:
    """A storage backend's reads, counted: bytes yielded and ranged reads made."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.bytes = 0
        self.reads = 0

    def reader(self, key: str) -> Read:
        """`Registry.open`'s reader of one key, through the counter."""
        return lambda start, stop: self._read(key, start, stop)

    def _read(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        self.reads += 1
        for chunk in self.backend.read(key, start=start, end=stop):
            self.bytes += len(chunk)
            yield chunk


def local_backend(root: Path) -> LocalBackend:
    return LocalBackend(root=root, secret_key="s" * 32, public_url=None)


def put(backend: LocalBackend, key: str, body: bytes) -> Path:
    """Store body at key; the file's path (to grow it in place)."""
    backend.commit(backend.stage(key, [body]))
    return backend.root / key


def sparse_csv(backend: LocalBackend, key: str, size: int = GIB, rows: int = 10_000) -> int:
    """A CSV of `size` bytes: a header and `rows` rows, then a hole the preview never reaches."""
    lines = ["id,name,score"] + [f"{i},row-{i},{i * 0.5}" for i in range(rows)]
    path = put(backend, key, ("\n".join(lines) + "\n").encode())
    os.truncate(path, size)
    return size


def large_parquet(backend: LocalBackend, key: str, size: int = GIB, payload: int = 1024) -> int:
    """A Parquet file of about `size` bytes (uncompressed, no dictionaries): row groups of 64 MiB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    group_rows = 64 * 1024 * 1024 // payload
    schema = pa.schema([("id", pa.int64()), ("label", pa.string()), ("payload", pa.binary())])
    path = backend.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = bytes(range(256)) * (payload // 256)
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        for group in range(max(1, size // (group_rows * payload))):
            first = group * group_rows
            table = pa.table(
                {
                    "id": pa.array(range(first, first + group_rows), pa.int64()),
                    "label": pa.array([f"label-{i % 10}" for i in range(first, first + group_rows)]),
                    "payload": pa.array([blob] * group_rows, pa.binary()),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=group_rows)
    return path.stat().st_size


def measure(storage: CountingStorage, name: str, key: str, size: int) -> tuple[Preview, int, int, float]:
    """The preview, bytes read, ranged reads and seconds."""
    storage.bytes = storage.reads = 0
    began = time.perf_counter()
    shown = preview(name, size, storage.reader(key))
    return shown, storage.bytes, storage.reads, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=GIB, help="bytes of each file (default 1 GiB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        storage = CountingStorage(local_backend(Path(work)))
        files = [
            ("big.csv", "files/md5/aa/csv", sparse_csv(storage.backend, "files/md5/aa/csv", args.size)),
            ("big.parquet", "files/md5/bb/pq", large_parquet(storage.backend, "files/md5/bb/pq", args.size)),
        ]
        for name, key, size in files:
            first = measure(storage, name, key, size)[3]  # cold: pyarrow's import, the disk
            shown, read, reads, seconds = measure(storage, name, key, size)
            print(
                f"{name:12} {size / GIB:5.2f} GiB  {shown.kind:6} {len(shown.rows):3} rows  "
                f"read {read:>9,} bytes ({read / size:.5%}) in {reads} ranged reads, "
                f"{seconds * 1000:6.1f} ms (first time {first * 1000:6.1f} ms)"
            )


if __name__ == "__main__":
    main()
