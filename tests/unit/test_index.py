"""The object index on SQLite: usage totals move with writes, and a database that cannot answer is a 503."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.db import build_engine, upgrade
from app.db.index import ObjectIndex
from app.errors import DatabaseUnavailable
from app.model import Project, Visibility
from scripts.harness import fresh_database_url
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
