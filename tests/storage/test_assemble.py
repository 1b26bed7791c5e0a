"""StorageBackend.assemble on every backend (what the S3 door's CompleteMultipartUpload stands on): parts
already stored, joined in order into one staged object with the whole's size and md5, visible only on
commit, nothing left by discard, the parts untouched either way."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from app.storage.s3 import S3Backend
from tests.storage.conftest import PART


def put(backend: Any, key: str, data: bytes) -> None:
    staged = backend.stage(key, [data])
    try:
        backend.commit(staged)
    finally:
        backend.discard(staged)


def test_parts_joined_in_order_appear_on_commit(backend: Any) -> None:
    parts = [os.urandom(PART), os.urandom(PART + 3), os.urandom(1234)]
    keys = [f"uploads/u1/{n}.x" for n in (3, 1, 2)]  # the order given, not the keys' order
    for key, data in zip(keys, parts, strict=True):
        put(backend, key, data)
    whole = b"".join(parts)
    staged = backend.assemble(keys, "projects/1/whole.bin", temp_key="uploads/u1/assembled")
    assert (staged.size, staged.md5) == (len(whole), hashlib.md5(whole).hexdigest())
    assert backend.stat("projects/1/whole.bin") is None  # not visible before commit
    backend.commit(staged)
    backend.discard(staged)
    assert hashlib.md5(b"".join(backend.read("projects/1/whole.bin"))).hexdigest() == staged.md5
    left = sorted(b.key for b in backend.list(""))
    assert left == ["projects/1/whole.bin", *sorted(keys)]  # the parts stay; no intermediate object


def test_one_part_and_discard_leaves_nothing(backend: Any) -> None:
    data = os.urandom(100_000)
    put(backend, "uploads/u2/1.x", data)
    staged = backend.assemble(["uploads/u2/1.x"], "projects/1/one.bin", temp_key="uploads/u2/assembled")
    assert (staged.size, staged.md5) == (len(data), hashlib.md5(data).hexdigest())
    backend.discard(staged)
    assert sorted(b.key for b in backend.list("")) == ["uploads/u2/1.x"]


def test_more_parts_than_one_compose_call_takes(backend: Any) -> None:
    """GCS composes at most 32 objects a call; S3 needs parts of 5 MiB (test_parts_joined… covers it)."""
    if isinstance(backend, S3Backend):
        pytest.skip("S3 parts but the last are 5 MiB or more: 40 of them are the first test's case, slower")
    parts = [os.urandom(1000 + n) for n in range(40)]
    keys = [f"uploads/u3/{n}.x" for n in range(40)]
    for key, data in zip(keys, parts, strict=True):
        put(backend, key, data)
    staged = backend.assemble(keys, "projects/1/many.bin", temp_key="uploads/u3/assembled")
    backend.commit(staged)
    backend.discard(staged)
    assert b"".join(backend.read("projects/1/many.bin")) == b"".join(parts)
    assert sorted(b.key for b in backend.list("")) == sorted(["projects/1/many.bin", *keys])
