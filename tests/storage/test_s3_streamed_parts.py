"""Streamed uploads of unknown length into S3 grow their parts, so a stream is not capped at 10,000 parts
of the first size; past what the schedule allows it is refused with 413 and nothing is kept."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from app.errors import FileTooLarge
from app.storage.s3 import S3Backend, streamed_part_size
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
