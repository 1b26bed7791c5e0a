"""The README's first command: `scripts/run` serves the registry on the embedded default (local disk,
SQLite) with the lifecycle worker beside it, and stopping it stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests

from scripts.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(os.environ.get("REGISTRY_TEST_POSTGRES_URL")),
        reason="the embedded default is SQLite: runs in the SQLite pass",
    ),
]


def test_scripts_run_serves_with_the_worker_and_stops_both(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REGISTRY_STORAGE_URL": f"file://{tmp_path / 'data'}",
        "REGISTRY_GITLAB_URL": "http://127.0.0.1:9",
        "BIND": f"127.0.0.1:{port}",
    }
    env.pop("REGISTRY_DATABASE_URL", None)
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen(
            [ROOT / "scripts" / "run"], env=env, stdout=log, stderr=log, start_new_session=True
        )
        try:
            deadline, ready = time.monotonic() + 60, None
            while time.monotonic() < deadline and ready is None:
                try:
                    ready = requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2)
                except (requests.ConnectionError, requests.Timeout):  # starting, or slow under load
                    time.sleep(0.2)
            assert ready is not None and ready.json()["checks"] == {"database": "ok", "storage": "ok"}
            assert (tmp_path / "data" / "registry.db").exists()  # SQLite beside the local storage
            children = psutil.Process(run.pid).children(recursive=True)
            workers = [p for p in children if "worker" in p.cmdline()]
            assert len(workers) == 1
        finally:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(timeout=60)
    assert not workers[0].is_running() or workers[0].status() == psutil.STATUS_ZOMBIE
    text = (tmp_path / "run.log").read_text()
    assert "job deletions done" in text
    # what is off is said once, by the server before its workers start; the worker names only its own job
    for feature in ("deploy tokens", "CI ID tokens", "GitLab hooks (/-/hooks/gitlab)", "job reconcile"):
        assert text.count(f"{feature}: off") == 1, text
