"""GitLab down (the simulator stopped): 503 with Retry-After, never 401/403; within the stale grace a
recently authorised pull still works, a push does not."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from scripts.harness import start_registry, start_simulator
from tests.conftest import TOKENS
from tests.e2e.dvc import same_tree, workspace

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stale_grace", [600, 0])
def test_gitlab_down(tmp_path: Path, stale_grace: int) -> None:
    gitlab = start_simulator()
    registry = start_registry(
        tmp_path / "registry",
        gitlab.url,
        REGISTRY_AUTH_CACHE_TTL="1",
        REGISTRY_AUTH_STALE_GRACE=str(stale_grace),
    )
    try:
        dataset = tmp_path / "dataset"
        (dataset / "data").mkdir(parents=True)
        for i in range(20):
            (dataset / "data" / f"{i}.bin").write_bytes(os.urandom(500))
        (dataset / "big.bin").write_bytes(os.urandom(1000))
        dvc = workspace(tmp_path, dataset)
        dvc.add_remote("r", f"{registry.url}/ml/vision/-/data/down", auth="bearer", token=TOKENS["developer"])
        dvc.run("push", "-r", "r")

        gitlab.stop()
        time.sleep(1.5)  # every cached permission is now past its TTL

        answer = requests.get(
            f"{registry.url}/ml/vision/-/data/x",
            headers={"Authorization": f"Bearer {TOKENS['reporter']}"},
            timeout=30,
        )
        assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0

        dvc.forget_local_data()
        pulled = dvc.run("pull", "-r", "r", ok=stale_grace > 0)
        if stale_grace:
            assert same_tree(dataset / "data", dvc.root / "data")
        else:
            assert pulled.returncode != 0

        (dvc.root / "new.txt").write_text("written while GitLab is down\n")
        dvc.run("add", "new.txt")
        pushed = dvc.run("push", "-r", "r", ok=False)
        assert pushed.returncode != 0
        assert "503, message='GitLab is unreachable; try again later'" in pushed.stdout + pushed.stderr
    finally:
        registry.stop()
        gitlab.stop()
