"""GitLab is asked once per credential, not once per request or per worker process."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import requests

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


@pytest.mark.parametrize("prefix", ["", "glpat-"], ids=["unprefixed", "glpat"])
def test_a_flood_of_made_up_tokens_costs_gitlab_little(
    registry: RegistryServer, gitlab: Simulator, prefix: str
) -> None:
    """200 random tokens from one address, as fast as they go: at most 20 GitLab calls; the address is
    told to slow down (429), and a credential that worked before keeps working meanwhile."""
    known = {"Authorization": f"Bearer {TOKENS['reporter']}"}
    with requests.Session() as warm:  # the good token is seen by every worker process before the flood
        for _ in range(8):
            assert (
                warm.head(f"{registry.url}/ml/vision/-/data/x", headers=known, timeout=10).status_code == 404
            )
    before = gitlab.world.total_calls()
    statuses: list[int] = []
    with requests.Session() as session:
        for _ in range(200):
            headers = {"Authorization": f"Bearer {prefix}{uuid.uuid4().hex}"}
            statuses.append(
                session.head(f"{registry.url}/ml/vision/-/data/x", headers=headers, timeout=10).status_code
            )
    calls = gitlab.world.total_calls() - before
    assert calls <= 20, dict(gitlab.world.calls)
    assert set(statuses) <= {401, 429} and statuses.count(429) > 100
    assert requests.head(f"{registry.url}/ml/vision/-/data/x", headers=known, timeout=10).status_code == 404
