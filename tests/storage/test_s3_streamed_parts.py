"""Streamed uploads of unknown length into S3 grow their parts, so a stream is not capped at 10,000 parts
of the first size; past what the schedule allows it is refused with 413 and nothing is kept."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.errors import FileTooLarge
from app.storage.base import PartBuffers
from app.storage.s3 import S3Backend
from app.storage.s3_parts import streamed_part_size
from tests.storage.conftest import PART, make_bucket
from tests.storage.test_contract import chunks


def test_the_schedule_reaches_148_gib_with_8_mib_parts() -> None:
    sizes = [streamed_part_size(n, 8 * 2**20, 10_000) for n in range(1, 10_001)]
    assert sizes[0] == sizes[4999] == 8 * 2**20 and sizes[5000] == 16 * 2**20 and sizes[-1] == 32 * 2**20
    assert sum(sizes) == 19_000 * 8 * 2**20


@pytest.fixture
def small(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Backend:
    """At most 4 parts: 5, 5, 10 and 20 MiB (40 MiB)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto")
    return S3Backend(
        bucket=make_bucket(moto_endpoint),
        prefix="p",
        endpoint_url=moto_endpoint,
        region="us-east-1",
        addressing_style="path",
        part_size=PART,
        max_parts=4,
    )


def test_growing_parts_take_the_whole_allowance(small: S3Backend, tmp_path: Path) -> None:
    data = os.urandom(8 * PART)  # 40 MiB: every part used, the last two larger
    staged = small.stage("projects/1/big", chunks(data))
    small.commit(staged)
    assert staged.md5 == hashlib.md5(data).hexdigest()
    assert b"".join(small.read("projects/1/big")) == data


def test_past_the_allowance_is_refused_and_nothing_kept(small: S3Backend) -> None:
    with pytest.raises(FileTooLarge, match="use a direct upload session"):
        small.stage("projects/1/huge", chunks(os.urandom(8 * PART + 1)))
    assert list(small.list("")) == []
    assert small.remove_stale_staging(older_than=2**40) == 0  # the multipart upload was aborted


def test_a_small_body_costs_its_size_not_whole_parts(small: S3Backend) -> None:
    """A 4 KB upload (DVC pushes thousands) allocates about 4 KB: zeroing part buffers (5 MiB each here,
    8 MiB by default) for it cost 20 ms of CPU per upload."""
    small.commit(small.stage("projects/1/first", chunks(b"once per backend: its connections, the probe")))
    body = os.urandom(4096)
    tracemalloc.start()
    try:
        staged = small.stage("projects/1/small", chunks(body))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    small.commit(staged)
    assert b"".join(small.read("projects/1/small")) == body
    assert peak < PART // 4, peak


def test_concurrent_uploads_share_a_bounded_set_of_part_buffers(small: S3Backend) -> None:
    """Six uploads of three parts each at once, with two part buffers for the worker: all complete
    byte-exact, and no more than two buffers were ever made (the others waited for one)."""
    small._buffers = PartBuffers(2)
    bodies = {f"projects/1/c{i}": os.urandom(2 * PART + 1234) for i in range(6)}

    def upload(item: tuple[str, bytes]) -> str:
        staged = small.stage(item[0], chunks(item[1]))
        small.commit(staged)
        return staged.md5

    with ThreadPoolExecutor(6) as pool:
        md5s = list(pool.map(upload, bodies.items()))
    assert md5s == [hashlib.md5(body).hexdigest() for body in bodies.values()]
    for key, body in bodies.items():
        assert b"".join(small.read(key)) == body
    assert small._buffers._made == 2 and len(small._buffers._free) == 2  # all given back


def test_a_taker_that_waited_long_enough_gets_an_extra_buffer() -> None:
    buffers = PartBuffers(1, patience=0.2)
    first = buffers.take(10)
    started = time.monotonic()
    extra = buffers.take(10)  # the only one is held (a slow uploader): wait, then get one more
    assert 0.15 < time.monotonic() - started < 5 and extra is not first
    buffers.give(extra)  # dropped: back to one
    buffers.give(first)
    assert buffers._made == 1 and buffers._free == [first]
    assert buffers.take(20) is first and len(first) == 20  # reused, grown for a larger part
