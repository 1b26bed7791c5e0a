"""The object index on SQLite: usage totals move with writes, and a database that cannot answer is a 503."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from app.db import build_engine, upgrade
from app.db.index import ObjectIndex
from app.errors import DatabaseUnavailable
from app.model.objects import Listing
from app.model.projects import Project, Visibility
from scripts.harness import fresh_database_url
from scripts.seed import index_rows
from tests.conftest import usage_of

PROJECT = Project(7, "g/p", Visibility.PRIVATE)


@pytest.fixture
def index(tmp_path: Path) -> ObjectIndex:
    url = fresh_database_url(tmp_path)
    upgrade(url)
    return ObjectIndex(build_engine(url))


def test_usage_follows_puts_replacements_and_removals(index: ObjectIndex) -> None:
    with index.writing(PROJECT) as tx:
        tx.put("a", size=10, md5="a" * 32, uploader_id=1)
        tx.put("b", size=5, md5="b" * 32, uploader_id=1)
    assert usage_of(index, PROJECT.id) == (15, 2)
    with index.writing(PROJECT) as tx:
        tx.put("a", size=3, md5="c" * 32, uploader_id=2)
    assert usage_of(index, PROJECT.id) == (8, 2)
    info = index.get(PROJECT.id, "a")
    assert info is not None and (info.size, info.md5) == (3, "c" * 32)
    assert info.created_at.tzinfo is not None
    with index.writing(PROJECT) as tx:
        assert tx.remove("b") is True
        assert tx.remove("b") is False
    assert usage_of(index, PROJECT.id) == (3, 1)
    assert index.get(PROJECT.id, "b") is None


def test_a_failed_transaction_changes_nothing(index: ObjectIndex) -> None:
    with pytest.raises(RuntimeError), index.writing(PROJECT) as tx:
        tx.put("a", size=10, md5="a" * 32, uploader_id=1)
        raise RuntimeError("storage commit failed")
    assert index.get(PROJECT.id, "a") is None
    assert usage_of(index, PROJECT.id) == (0, 0)


def test_missing_and_find(index: ObjectIndex) -> None:
    with index.writing(PROJECT) as tx:
        for i in range(1200):
            tx.put(f"r/files/md5/{i:04d}", size=1, md5="0" * 32, uploader_id=None)
        tx.put("r/files/md5/x.dir", size=1, md5="1" * 32, uploader_id=None)
        tx.put("r_other/y.dir", size=1, md5="1" * 32, uploader_id=None)
    wanted = [f"r/files/md5/{i:04d}" for i in (5, 1199, 1200, 3000)]
    assert index.missing(PROJECT.id, wanted) == ["r/files/md5/1200", "r/files/md5/3000"]
    assert index.missing(PROJECT.id + 1, wanted[:1]) == wanted[:1]
    assert [o.path for o in index.find(PROJECT.id, prefix="r/", suffix=".dir")] == ["r/files/md5/x.dir"]
    assert len(list(index.find(PROJECT.id, prefix="r/files/md5/0"))) == 1000


def test_unreachable_database_is_unavailable_not_an_internal_error() -> None:
    index = ObjectIndex(build_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"))
    with pytest.raises(DatabaseUnavailable):
        index.get(1, "a")
    with pytest.raises(DatabaseUnavailable), index.writing(PROJECT):
        pass
    with pytest.raises(DatabaseUnavailable):
        index.check()


def test_children_lists_objects_and_sub_collections_in_order(index: ObjectIndex) -> None:
    paths = ["r/a", "r/a-b", "r/a/x", "r/a/y/z", "r/a0", "r/b/1", "r/files/md5/00/" + "0" * 30, "rz", "r"]
    with index.writing(PROJECT) as tx:
        for path in paths:
            tx.put(path, size=len(path), md5="0" * 32, uploader_id=None)
    listed = [(name, info.path if info else None) for name, info in index.children(PROJECT.id, "r/")]
    assert listed == [
        ("a", "r/a"),
        ("a-b", "r/a-b"),  # byte order, as buckets list: "-" sorts before "/"
        ("a", None),
        ("a0", "r/a0"),
        ("b", None),
        ("files", None),
    ]
    assert [n for n, _ in index.children(PROJECT.id, "")] == ["r", "r", "rz"]
    assert list(index.children(PROJECT.id, "nothing/")) == []
    assert index.has_prefix(PROJECT.id, "r/a/") and not index.has_prefix(PROJECT.id, "r/c/")


def test_children_of_a_big_prefix_page_through(index: ObjectIndex) -> None:
    with index.writing(PROJECT) as tx:
        for i in range(1234):
            tx.put(f"big/{i:05d}", size=1, md5="0" * 32, uploader_id=None)
        tx.put("big/sub/x", size=1, md5="0" * 32, uploader_id=None)
    names = [n for n, _ in index.children(PROJECT.id, "big/")]
    assert names == [f"{i:05d}" for i in range(1234)] + ["sub"]


def _plans(engine: Any, run: Callable[[], object]) -> list[str]:
    """The query plans (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN without sequential scans) of
    every SELECT on objects that `run` makes."""
    seen: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "objects" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()
        for statement, parameters in seen:
            if engine.dialect.name == "postgresql":
                cursor.execute("SET enable_seqscan = off")
                cursor.execute("EXPLAIN " + statement, parameters)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append("\n".join(str(row[-1]) for row in cursor.fetchall()))
    return plans


def test_prefix_listings_stay_on_the_btree(tmp_path: Path) -> None:
    """Listing a prefix, a folder's children and a prefix's existence use the (project, path) index with
    a range on path on both databases: no LIKE, no scan of the project's rows (issue 16)."""
    url = fresh_database_url(tmp_path)
    upgrade(url)
    engine = build_engine(url)
    index = ObjectIndex(engine)
    with index.writing(Project(1, "g/p", Visibility.PRIVATE)) as tx:
        for i in range(3000):  # enough rows for PostgreSQL's planner to prefer the right index
            tx.put(f"data/{i // 10:03d}/{i % 10}.bin", size=1, md5=f"{i:032x}", uploader_id=None)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE objects" if engine.dialect.name == "postgresql" else "ANALYZE")

    plans = _plans(
        engine,
        lambda: (
            index.page(1, Listing(prefix="data/01", limit=10)),
            list(index.children(1, "data/")),
            index.has_prefix(1, "data/0"),
        ),
    )
    assert len(plans) >= 3
    for plan in plans:
        assert "LIKE" not in plan.upper() and "~~" not in plan, plan
        if engine.dialect.name == "postgresql":
            assert re.search(r"Index Cond: .*path\)?(::text)? >", plan), plan
        else:
            assert "SEARCH" in plan and "path>? AND path<?" in plan.replace("path>=?", "path>?"), plan


def test_a_folder_listing_costs_its_children_not_what_lies_below_them(tmp_path: Path) -> None:
    """A PROPFIND of DVC's `files/md5` lists its sub-collections with one index seek each: the database
    does about the same work whether each holds 3 objects or 20,000 (SQLite's virtual machine steps)."""
    url = fresh_database_url(tmp_path)
    if not url.startswith("sqlite"):
        pytest.skip("counts SQLite's steps; the plan test shows the same seeks on PostgreSQL")
    upgrade(url)
    engine = build_engine(url)
    index = ObjectIndex(engine)
    for project, per_folder in ((1, 3), (2, 20_000)):
        rows = [(f"files/md5/{f:02x}/{i:030x}", 1, "0" * 32) for f in range(4) for i in range(per_folder)]
        index_rows(engine, project, f"g/{project}", rows)

    def steps(project: int) -> int:
        counted = [0]

        def count(raw: Any, _record: Any, _proxy: Any) -> None:
            raw.set_progress_handler(lambda: counted.__setitem__(0, counted[0] + 1), 10)

        event.listen(engine.pool, "checkout", count)
        try:
            assert [n for n, _ in index.children(project, "files/md5/")] == ["00", "01", "02", "03"]
        finally:
            event.remove(engine.pool, "checkout", count)
        return counted[0]

    small, big = steps(1), steps(2)
    assert small > 0 and big < 2 * small, (small, big)


def test_prefixes_are_exact_and_case_sensitive(index: ObjectIndex) -> None:
    with index.writing(Project(1, "g/p", Visibility.PRIVATE)) as tx:
        for path in ("Data/a", "data/a", "data/b/c", "data0", "data/\U0010ffff", "dat"):
            tx.put(path, size=1, md5="0" * 32, uploader_id=None)
    assert [i.path for i in index.page(1, Listing(prefix="data/"))] == [
        "data/a",
        "data/b/c",
        "data/\U0010ffff",
    ]
    assert [i.path for i in index.page(1, Listing(prefix="data/\U0010ffff"))] == ["data/\U0010ffff"]
    assert [name for name, _ in index.children(1, "data/")] == ["a", "b", "\U0010ffff"]
    assert index.has_prefix(1, "Data/") and not index.has_prefix(1, "DATA/")


def test_children_names_each_sub_collection_once_across_pages(index: ObjectIndex) -> None:
    """Sub-collections big and small around page boundaries (pages of 500 rows), and objects between them:
    every child once, in path order, as a plain scan of all paths would name them."""
    paths = [f"files/md5/{i:02x}/{j:03d}" for i in range(0, 40) for j in range(7)]  # small, 280 rows
    paths += [f"files/md5/big/{j:04d}" for j in range(1200)]  # larger than a page
    paths += ["files/md5/a-object", "files/md5/zz", "files/md5/big0", "files/md5/big-", "files/other/x"]
    with index.writing(Project(3, "g/q", Visibility.PRIVATE)) as tx:
        for path in paths:
            tx.put(path, size=1, md5="0" * 32, uploader_id=None)
    listed = [(name, info is None) for name, info in index.children(3, "files/md5/")]
    expected: dict[str, bool] = {}
    for path in sorted(p for p in paths if p.startswith("files/md5/")):
        name, slash, _ = path.removeprefix("files/md5/").partition("/")
        expected.setdefault(name, bool(slash))
    assert listed == list(expected.items())
