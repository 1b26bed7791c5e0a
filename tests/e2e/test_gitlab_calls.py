"""GitLab is asked once per credential, not once per request or per worker process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.harness import RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.dvc import Dvc

pytestmark = pytest.mark.e2e


def test_a_push_of_2000_objects_costs_at_most_3_gitlab_calls(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    for i in range(1999):
        (repo / "data" / f"{i:04d}.bin").write_bytes(os.urandom(64))
    dvc = Dvc(repo)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data")
    dvc.add_remote("r", f"{registry.url}/ml/vision/-/data/many", auth="bearer", token=TOKENS["developer"])
    before = gitlab.world.total_calls()
    pushed = dvc.run("push", "-r", "r", "-j", "64")  # 64 jobs: the default rate limits must not trip
    assert "2000 files pushed" in pushed.stdout, pushed.stdout
    calls = gitlab.world.total_calls() - before
    assert calls <= 3, dict(gitlab.world.calls)  # token self, project, membership: once for all workers
