"""Previews on an object's page: each kind from a real local storage backend whose reads are counted (a
1 GiB CSV and a 1 GiB Parquet file read a bounded few bytes), the no-preview answer for what cannot be
shown (malformed CSV, Parquet, JSON; binary; too big), Markdown stripped of script, event handlers and
javascript: links; and the object page itself: `?name=` titles it, names its download and picks the
preview of a content-addressed dataset file."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flask import Flask

from app.errors import StorageUnavailable
from app.previews.choose import preview
from app.previews.markdown import render_markdown
from scripts.bench.preview_bytes import (
    GIB,
    CountingStorage,
    large_parquet,
    local_backend,
    put,
    sparse_csv,
)
from tests.conftest import bearer
from tests.unit.test_project_pages import HTML

MIB = 1024 * 1024


@pytest.fixture
def storage(tmp_path: Path) -> CountingStorage:
    return CountingStorage(local_backend(tmp_path / "bucket"))


def shown(storage: CountingStorage, name: str, body: bytes, key: str = "files/md5/ab/cdef") -> object:
    put(storage.backend, key, body)
    storage.bytes = storage.reads = 0
    return preview(name, len(body), storage.reader(key))


def png(width: int = 3, height: int = 2) -> bytes:
    """A real PNG (RGB, every pixel teal) without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x00\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def parquet_bytes(table: pa.Table, **options: object) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **options)
    return out.getvalue()


# --- CSV and TSV ---


def test_a_csv_shows_its_column_names_and_first_50_rows(storage: CountingStorage) -> None:
    body = ("city;population\n" + "".join(f"town {i};{i * 100}\n" for i in range(500))).encode()
    got = shown(storage, "data/towns.csv", body)
    assert got.kind == "table" and got.columns == ("city", "population")  # `;` sniffed
    assert len(got.rows) == 50 and got.rows[0] == ("town 0", "0") and got.rows[-1] == ("town 49", "4900")
    assert got.note == "The first 50 rows."
    small = shown(storage, "x.tsv", b"a\tb,c\n1\t2,3\n")
    assert small.columns == ("a", "b,c") and small.rows == (("1", "2,3"),) and small.note == "All 1 row."


def test_a_1_gib_csv_is_previewed_from_its_first_64_kib(storage: CountingStorage) -> None:
    size = sparse_csv(storage.backend, "files/md5/aa/big")
    assert size == GIB
    got = preview("big.csv", size, storage.reader("files/md5/aa/big"))
    assert got.kind == "table" and got.columns == ("id", "name", "score") and len(got.rows) == 50
    assert got.rows[49] == ("49", "row-49", "24.5")
    assert storage.bytes == got.bytes_read == 64 * 1024 and storage.reads == 1


def test_wide_rows_read_growing_windows_up_to_1_mib_and_cut_at_a_line_end(storage: CountingStorage) -> None:
    line = ",".join(["v" * 190] * 80) + "\n"  # 15 KiB a row: 64 KiB holds four
    body = (",".join(f"c{i}" for i in range(80)) + "\n" + line * 200).encode()
    got = shown(storage, "wide.csv", body)
    assert got.kind == "table" and len(got.columns) == 50 and got.columns[49] == "c49"
    assert "The first 50 of 80 columns." in got.note and len(got.rows) == 50
    assert storage.bytes <= MIB and storage.reads == 4  # 64 KiB, then 128, 256 and 512 KiB
    assert got.rows[0][0] == "v" * 190 and all(len(row) == 50 for row in got.rows)
    long_cell = shown(storage, "c.csv", b"a\n" + b"x" * 500 + b"\n")
    assert long_cell.rows[0][0] == "x" * 199 + "…"


def test_csv_that_cannot_be_shown_says_why(storage: CountingStorage) -> None:
    binary = shown(storage, "nul.csv", b"a,b\n\x00\x01\x02,3\n")
    assert binary.kind == "none" and "binary data" in binary.note
    huge_field = shown(storage, "q.csv", b'a,b\n"' + b"x" * 200_000 + b'",1\n')
    assert huge_field.kind == "none" and huge_field.note.startswith("It is not valid delimited text (field")
    one_line = shown(storage, "l.csv", b"x" * (2 * MIB))
    assert one_line.kind == "none" and "first line is longer than 1.0 MiB" in one_line.note
    assert storage.bytes <= MIB


# --- Parquet ---


def test_parquet_shows_its_columns_with_types_and_first_rows(storage: CountingStorage) -> None:
    table = pa.table({"id": list(range(120)), "name": [f"n{i}" for i in range(120)], "b": [b"\x01"] * 120})
    got = shown(storage, "t.parquet", parquet_bytes(table, row_group_size=100))
    assert got.kind == "table" and got.columns == ("id", "name", "b")
    assert got.column_types == ("int64", "string", "binary")
    assert (
        len(got.rows) == 50 and got.rows[3] == ("3", "n3", "01") and got.note == "The first 50 rows of 120."
    )
    nulls = shown(storage, "n.parquet", parquet_bytes(pa.table({"x": [None, 1]})))
    assert nulls.rows == (("null",), ("1",)) and nulls.note == "All 2 rows."
    wide = shown(storage, "w.parquet", parquet_bytes(pa.table({f"c{i}": [i] for i in range(40)})))
    assert len(wide.columns) == 30 and "The first 30 of 40 columns." in wide.note


def test_a_1_gib_parquet_file_is_previewed_from_its_footer_and_first_pages(storage: CountingStorage) -> None:
    size = large_parquet(storage.backend, "files/md5/bb/big")
    assert size > GIB
    try:
        got = preview("big.parquet", size, storage.reader("files/md5/bb/big"))
    finally:
        storage.backend.delete("files/md5/bb/big")  # a real GiB: not left behind in pytest's temp dirs
    assert got.kind == "table" and got.columns == ("id", "label", "payload") and len(got.rows) == 50
    assert got.rows[7][:2] == ("7", "label-7") and got.note == "The first 50 rows of 1,048,576."
    assert storage.bytes == got.bytes_read < 2 * MIB and storage.reads < 10


def test_a_first_row_group_larger_than_the_cap_shows_the_schema(storage: CountingStorage) -> None:
    table = pa.table({"id": [1, 2], "blob": [b"\x00" * (20 * MIB), b""]})
    got = shown(storage, "blob.parquet", parquet_bytes(table, compression="none", use_dictionary=False))
    assert got.kind == "schema" and got.columns == ("id", "blob") and got.rows == ()
    assert "first rows take more than 16.0 MiB to read" in got.note and "2 rows in 1 row groups" in got.note
    assert storage.bytes <= 16 * MIB


def test_malformed_parquet_gives_no_preview(storage: CountingStorage) -> None:
    good = parquet_bytes(pa.table({"a": list(range(1000))}))
    for body in (b"PAR1" + b"\x07" * 100 + b"PAR1", good[: len(good) // 2], b"not parquet at all"):
        got = shown(storage, "bad.parquet", body)
        assert got.kind == "none" and got.note == "It is not a readable Parquet file.", body[:20]


# --- images ---


def test_images_are_inline_data_urls_when_small_and_of_their_type(storage: CountingStorage) -> None:
    image = png()
    got = shown(storage, "cat.png", image)
    assert got.kind == "image" and got.image_url.startswith("data:image/png;base64,iVBORw0KGgo")
    svg = shown(storage, "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>')
    assert svg.kind == "image" and svg.image_url.startswith("data:image/svg+xml;base64,")
    wrong = shown(storage, "cat.jpg", image)
    assert wrong.kind == "none" and wrong.note == "Its bytes are not a JPG image."
    huge = shown(storage, "huge.png", image + b"\x00" * (2 * MIB))
    assert huge.kind == "none" and "over 2.0 MiB" in huge.note and storage.bytes == 0


# --- Markdown ---


def test_markdown_renders_and_script_handlers_and_javascript_links_are_gone() -> None:
    html = render_markdown(
        "# Cats\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "[site](https://example.org) [bad](javascript:alert(1))\n\n"
        '<script>window.previewPwned = 1</script>\n\n<img src="x.png" onerror="window.previewPwned = 1">\n\n'
        '<a href="javascript:window.previewPwned=1" onclick="x()">click</a> <b style="color:red">bold</b>\n'
    )
    assert "<h1>Cats</h1>" in html and "<td>1</td>" in html and "<b>bold</b>" in html
    assert '<a href="https://example.org" rel="nofollow noopener noreferrer">site</a>' in html
    for gone in ("<script", "previewPwned", "onerror", "onclick", 'href="javascript', "style="):
        assert gone not in html, gone
    assert "[bad](javascript:alert(1))</p>" in html  # markdown-it refuses the link: it stays text


def test_a_markdown_file_is_rendered_its_first_128_kib_when_larger(storage: CountingStorage) -> None:
    got = shown(storage, "README.md", b"# Hello\n\nSome *data*.\n")
    assert got.kind == "markdown" and "<em>data</em>" in got.html and got.note == ""
    big = shown(storage, "BIG.md", b"# Big\n\n" + b"some text\n" * 20_000 + b"\nend\n")
    assert (
        big.kind == "markdown"
        and big.note == "Its first 128.0 KiB, rendered."
        and storage.bytes == 128 * 1024
    )
    assert big.html.startswith("<h1>Big</h1>") and "end" not in big.html


# --- JSON and text ---


def test_json_is_pretty_printed_and_malformed_json_gives_no_preview(storage: CountingStorage) -> None:
    got = shown(storage, "meta.json", b'{"b": [1, 2], "name": "caf\xc3\xa9"}')
    assert got.kind == "json" and got.text == json.dumps(
        {"b": [1, 2], "name": "café"}, indent=2, ensure_ascii=False
    )
    bad = shown(storage, "bad.json", b'{"a": [1, 2')
    assert (
        bad.kind == "none"
        and bad.note == "It is not valid JSON (Expecting ',' delimiter at line 1, column 12)."
    )
    deep = shown(storage, "deep.json", b"[" * 100_000 + b"]" * 100_000)
    assert deep.kind == "none"
    large = shown(storage, "large.json", b"[" + b"1," * 300_000 + b"1]")
    assert large.kind == "json" and large.note.startswith("Too large to pretty-print here")
    assert storage.bytes == len(large.text) == 64 * 1024


def test_text_is_its_first_64_kib_decoded_with_replacement(storage: CountingStorage) -> None:
    got = shown(storage, "notes.txt", b"caf\xe9 ok\n")
    assert got.kind == "text" and got.text == "caf\ufffd ok\n"
    readme = shown(storage, "LICENSE", b"MIT License\n")
    assert readme.kind == "text" and readme.text == "MIT License\n"
    big = shown(storage, "run.log", b"line\n" * 100_000)
    assert big.text == "line\n" * 13107 + "l" and storage.bytes == 64 * 1024
    assert big.note == "Its first 64.0 KiB of 488.3 KiB."


def test_other_files_say_why_and_read_nothing(storage: CountingStorage) -> None:
    got = shown(storage, "model.pkl", b"\x80\x04" * 100)
    assert got.kind == "none" and got.note == "There is no preview for .pkl files (200 B)."
    assert storage.reads == 0
    assert shown(storage, "empty.csv", b"").note == "The file is empty."
    assert shown(storage, "blob", b"\x00\x01binary").note == "It holds binary data (NUL bytes), not text."


def test_a_storage_outage_is_a_no_preview_answer() -> None:
    def read(start: int, stop: int) -> Iterator[bytes]:
        raise StorageUnavailable("bucket down")

    got = preview("a.csv", 10, read)
    assert got.kind == "none" and got.note == "Its bytes could not be read from storage just now."


# --- the object page ---


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(download_mode="redirect")


def test_the_object_page_of_a_dataset_file_is_named_by_name_and_previews_by_it(app: Flask) -> None:
    client = app.test_client()
    address = "dvc/files/md5/3f/0a1b2c"
    body = b"file,label\ncat-00.jpg,cat\n<b>x</b>,dog\n"
    assert (
        client.put(f"/ml/open-data/-/data/{address}", data=body, headers=bearer("developer")).status_code
        == 201
    )
    page = client.get(
        f"/ml/open-data/-/data/{address}?name=data/labels.csv&dataset=x.dir&ref=v1", headers=HTML
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<title>labels.csv · ml/open-data" in html and '<h1 class="object-name">labels.csv</h1>' in html
    assert '<th scope="col">file</th><th scope="col">label</th>' in html
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in html  # escaped, never markup
    assert (
        'download="labels.csv"' in html
        and "name=labels.csv" in html
        and "<code>data/labels.csv</code>" in html
    )
    raw = client.get(f"/ml/open-data/-/data/{address}", headers=HTML).get_data(as_text=True)
    assert "No preview: There is no preview for files" not in raw and "It holds" not in raw
    assert '<h1 class="object-name">0a1b2c</h1>' in raw and '<pre class="preview-text">' in raw  # as text
    refused = client.get(f"/ml/open-data/-/data/{address}?name=a%00b", headers=HTML)
    assert refused.status_code == 400 and "contains a NUL character" in refused.get_data(as_text=True)


def test_a_readme_page_has_no_script_and_a_binary_page_offers_its_download(app: Flask) -> None:
    client = app.test_client()
    for path, body in (("README.md", b"# Data\n<script>window.x=1</script>\n"), ("m.bin", b"\x00" * 64)):
        client.put(f"/ml/open-data/-/data/{path}", data=body, headers=bearer("developer"))
    readme = client.get("/ml/open-data/-/data/README.md", headers=HTML).get_data(as_text=True)
    assert '<div class="markdown"><h1>Data</h1>' in readme and "<script" not in readme
    binary = client.get("/ml/open-data/-/data/m.bin", headers=HTML).get_data(as_text=True)
    assert "No preview: There is no preview for .bin files (64 B)." in binary
    assert '<a href="/-/ui/projects/102/download?path=m.bin" download="m.bin">Download it</a>' in binary
