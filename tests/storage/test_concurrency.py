"""Many uploads at once against the concurrent emulators (fake-gcs-server for GCS, SeaweedFS for S3):
each lands whole under its own key, and racing writers of one key leave one complete version."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.storage.conftest import PART, make_backend
from tests.storage.test_contract import chunks


@pytest.mark.parametrize("name", ["gcs-fake", "s3-seaweedfs"])
def test_parallel_uploads(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(name, request, tmp_path, monkeypatch)
    bodies = {f"projects/1/p/{i}": os.urandom(PART + 1000 * i) for i in range(12)}
    racing = [os.urandom(PART // 2) for _ in range(6)]

    def put(item: tuple[str, bytes]) -> str:
        staged = backend.stage(item[0], chunks(item[1]))  # type: ignore[attr-defined]
        try:
            backend.commit(staged)  # type: ignore[attr-defined]
        finally:
            backend.discard(staged)  # type: ignore[attr-defined]
        return staged.md5

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, [*bodies.items(), *(("projects/1/race", body) for body in racing)]))
    for key, body in bodies.items():
        assert b"".join(backend.read(key)) == body  # type: ignore[attr-defined]
    winner = b"".join(backend.read("projects/1/race"))  # type: ignore[attr-defined]
    assert hashlib.md5(winner).hexdigest() in {hashlib.md5(b).hexdigest() for b in racing}
    assert sorted(b.key for b in backend.list("projects/1/")) == sorted([*bodies, "projects/1/race"])  # type: ignore[attr-defined]
