"""`data-registry worker` as a real process: killed with SIGKILL in the middle of deleting a 20,000-object
project, restarted, it finishes; every object of the other projects is still there with its md5."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import build_engine, upgrade
from app.db.lifecycle import Lifecycle
from app.db.models import Base
from app.settings import load_settings
from scripts.harness import BIN, Simulator, fresh_database_url
from scripts.seed import seed_project

pytestmark = pytest.mark.e2e


def progress(url: str, project_id: int) -> tuple[str, int]:
    projects = Base.metadata.tables["projects"]
    engine = build_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            select(projects.c.state, projects.c.deleted_objects).where(projects.c.id == project_id)
        ).one()
    engine.dispose()
    return row.state, row.deleted_objects


def test_sigkill_mid_deletion_then_restart(tmp_path: Path, gitlab: Simulator) -> None:
    env = {
        **os.environ,
        "REGISTRY_STORAGE_URL": f"file://{tmp_path / 'storage'}",
        "REGISTRY_DATABASE_URL": fresh_database_url(tmp_path),
        "REGISTRY_GITLAB_URL": gitlab.url,
        "REGISTRY_DELETION_BATCH": "100",
        "REGISTRY_DELETION_LEASE": "2",
    }
    settings = load_settings(environ=env)
    upgrade(settings.effective_database_url)
    seed_project(settings, 101, "ml/vision", 20_000)
    kept = {
        **seed_project(settings, 106, "ml/pipeline", 300),
        **seed_project(settings, 102, "ml/open-data", 300),
    }
    engine = build_engine(settings.effective_database_url)
    with Lifecycle(engine).writing() as tx:
        tx.request_deletion(101, "ml/vision", "test")
    engine.dispose()

    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [BIN / "data-registry", "worker", "--once", "deletions"], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while progress(settings.effective_database_url, 101)[1] < 3000 and time.monotonic() < deadline:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    state, deleted = progress(settings.effective_database_url, 101)
    assert state == "deleting" and 3000 <= deleted < 20_000, (state, deleted)

    time.sleep(2.5)  # the killed worker's lease runs out
    rerun = subprocess.run(
        [BIN / "data-registry", "worker", "--once", "deletions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert progress(settings.effective_database_url, 101) == ("deleted", 20_000)
    root = tmp_path / "storage"
    assert not (root / "projects/101").exists()
    stored = {
        f"{p.parent.name}/{p.name}": hashlib.md5(p.read_bytes()).hexdigest()
        for project in ("106", "102")
        for p in (root / "projects" / project).rglob("*")
        if p.is_file()
    }
    assert len(stored) == len(kept) == 600
    assert sorted(stored.values()) == sorted(kept.values())
