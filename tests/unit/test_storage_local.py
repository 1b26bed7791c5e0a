"""The storage contract, run against the local backend (cloud backends join this suite later)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import Conflict, NotFound
from app.storage.local import LocalBackend


@pytest.fixture
def storage(tmp_path: Path) -> LocalBackend:
    return LocalBackend(root=tmp_path / "root", secret_key="s" * 32, public_url="http://registry.test")


def put(storage: LocalBackend, key: str, body: bytes) -> None:
    staged = storage.stage(key, iter([body[:3], body[3:]]))
    storage.commit(staged)


def test_stage_computes_size_and_md5_and_hides_until_commit(storage: LocalBackend) -> None:
    staged = storage.stage("projects/1/a/b", iter([b"hello ", b"world"]))
    assert (staged.size, staged.md5) == (11, hashlib.md5(b"hello world").hexdigest())
    assert storage.stat("projects/1/a/b") is None
    storage.commit(staged)
    info = storage.stat("projects/1/a/b")
    assert info is not None and info.size == 11
    assert b"".join(storage.read("projects/1/a/b")) == b"hello world"


def test_discard_leaves_nothing(storage: LocalBackend) -> None:
    staged = storage.stage("projects/1/x", iter([b"data"]))
    storage.discard(staged)
    storage.discard(staged)
    assert storage.stat("projects/1/x") is None
    assert list((storage.root / ".tmp").iterdir()) == []


def test_a_failing_body_leaves_nothing(storage: LocalBackend) -> None:
    def body() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("client went away")

    with pytest.raises(OSError):
        storage.stage("projects/1/x", body())
    assert list((storage.root / ".tmp").iterdir()) == []


def test_ranged_reads(storage: LocalBackend) -> None:
    body = bytes(range(256)) * 10
    put(storage, "projects/1/r", body)
    assert b"".join(storage.read("projects/1/r", start=10, end=20)) == body[10:20]
    assert b"".join(storage.read("projects/1/r", start=2500)) == body[2500:]
    with pytest.raises(NotFound):
        storage.read("projects/1/missing")


def test_list_and_delete_prune_directories(storage: LocalBackend) -> None:
    for key in ("projects/1/d/a", "projects/1/d/b", "projects/1/e", "projects/2/d/a"):
        put(storage, key, key.encode())
    assert [b.key for b in storage.list("projects/1/")] == [
        "projects/1/d/a",
        "projects/1/d/b",
        "projects/1/e",
    ]
    assert [b.key for b in storage.list("projects/1/d")] == ["projects/1/d/a", "projects/1/d/b"]
    storage.delete("projects/1/d/a")
    storage.delete("projects/1/d/b")
    storage.delete("projects/1/d/b")
    assert not (storage.root / "projects/1/d").exists()
    assert [b.key for b in storage.list("projects/")] == ["projects/1/e", "projects/2/d/a"]


def test_object_and_prefix_of_the_same_name_conflict(storage: LocalBackend) -> None:
    put(storage, "projects/1/a", b"file")
    with pytest.raises(Conflict):
        put(storage, "projects/1/a/b", b"inside a file")
    assert list((storage.root / ".tmp").iterdir()) == []


@pytest.mark.parametrize("key", ["../escape", "projects/../../escape", ".tmp/x", ""])
def test_keys_never_escape_the_root(storage: LocalBackend, key: str) -> None:
    with pytest.raises(ValueError, match="escapes"):
        storage.stage(key, iter([b"x"]))


def test_signed_urls_resolve_only_unexpired_and_untampered(storage: LocalBackend) -> None:
    url = storage.sign_download("projects/1/a", ttl=60).url
    assert url.startswith("http://registry.test/-/blobs/")
    token = url.rsplit("/", 1)[1]
    assert storage.resolve_signed(token) == ("projects/1/a", None)
    named = storage.sign_download("projects/1/a", ttl=60, disposition='attachment; filename="cat.jpg"').url
    assert storage.resolve_signed(named.rsplit("/", 1)[1]) == (
        "projects/1/a",
        'attachment; filename="cat.jpg"',
    )
    with pytest.raises(Exception, match="invalid"):
        storage.resolve_signed(token[:5] + ("A" if token[5] != "A" else "B") + token[6:])
    expired = storage.sign_download("projects/1/a", ttl=-5).url.rsplit("/", 1)[1]
    with pytest.raises(Exception, match="expired"):
        storage.resolve_signed(expired)
    other = LocalBackend(root=storage.root, secret_key="t" * 32, public_url=None)
    with pytest.raises(Exception, match="invalid"):
        other.resolve_signed(token)
