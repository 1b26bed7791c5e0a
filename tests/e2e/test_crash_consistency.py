"""SIGKILL at any instant of uploads and overwrites (gunicorn's workers, every fifth round its master too),
then a restart: right away, before any sweep or repair, every indexed object's stored bytes have its size
and md5 (a new version is written to a key of its own; the index switches in one transaction)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from app.components import build_components
from scripts.harness import RegistryServer, Simulator, serve_registry, start_registry
from tests.conftest import TOKENS

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {TOKENS['developer']}"}
# 50 rounds on the SQLite pass; the PostgreSQL pass repeats 10 of them.
ROUNDS = int(os.environ.get("CRASH_ROUNDS", "10" if os.environ.get("REGISTRY_TEST_POSTGRES_URL") else "50"))
PATHS = [f"models/m{i}.bin" for i in range(4)]


def kill(process: subprocess.Popen[bytes], *, master: bool) -> None:
    """SIGKILL gunicorn's workers, and its master too, in the same instant."""
    workers = psutil.Process(process.pid).children(recursive=True)
    family = [psutil.Process(process.pid), *workers] if master else workers
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(signal.SIGKILL)
    if master:
        process.wait()
    psutil.wait_procs(family, timeout=10)


def wait_healthy(url: str) -> None:
    """Until the master has new workers serving (it forks them again after they were killed)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/-/health", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError("gunicorn did not fork new workers")


def uploads(url: str, rng: random.Random, stop: threading.Event) -> None:
    """Overwrites of a few paths and new content-addressed objects until stopped (errors expected)."""
    with requests.Session() as session:
        while not stop.is_set():
            body = os.urandom(rng.choice([10, 4096, 300_000, 2_500_000]))
            if rng.random() < 0.7:
                target = f"{url}/ml/vision/-/data/{rng.choice(PATHS)}?overwrite=true"
            else:
                md5 = hashlib.md5(body).hexdigest()
                target = f"{url}/ml/vision/-/data/dvc/files/md5/{md5[:2]}/{md5[2:]}"
            try:
                session.put(target, data=body, headers=AUTH, timeout=10)
            except requests.RequestException:
                return  # the server was killed


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("crash"), gitlab.url)
    yield server
    server.stop()


def test_sigkill_during_overwrites_never_leaves_wrong_bytes_indexed(
    first: RegistryServer, tmp_path: Path
) -> None:
    rng = random.Random(1313)
    env, storage = first.env, first.storage
    overrides = {"storage_url": env["REGISTRY_STORAGE_URL"], "database_url": env["REGISTRY_DATABASE_URL"]}
    url, process = first.url, first.process
    checked = 0
    for round_ in range(ROUNDS):
        stop = threading.Event()
        workers = [
            threading.Thread(target=uploads, args=(url, random.Random(rng.random()), stop)) for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        time.sleep(rng.uniform(0.02, 0.4))
        whole = round_ % 5 == 0  # every fifth round the master too, then a fresh start
        kill(process, master=whole)
        stop.set()
        for worker in workers:
            worker.join()
        parts = build_components(overrides)  # no sweep, no repair: right after the restart
        for info in parts.index.find(101, prefix=""):
            data = (storage / info.key).read_bytes()
            assert (len(data), hashlib.md5(data).hexdigest()) == (info.size, info.md5), f"round {round_}"
            checked += 1
        used = sum(info.size for info in parts.index.find(101, prefix=""))
        record = parts.index.project(101)
        assert record is not None and record.used_bytes == used
        if whole:
            restarted = serve_registry(tmp_path, env)
            url, process = restarted.url, restarted.process
        else:
            wait_healthy(url)
    first.process = process  # stopped by the fixture
    assert checked > ROUNDS
