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


@pytest.mark.parametrize(("prefix", "kinds"), [("", 3), ("glpat-", 1)], ids=["unprefixed", "glpat"])
def test_a_flood_of_made_up_tokens_holds_up_nobody_else(
    registry: RegistryServer, gitlab: Simulator, prefix: str, kinds: int
) -> None:
    """200 random tokens from one address, as fast as they go: each costs GitLab at most one look-up per
    kind it may be, and nothing when it comes again; past its refusal budget the address is told to slow
    down (429). A credential that worked before, and a valid one never seen before, are answered
    normally meanwhile: the limit counts refusals, it never stands between a token and its look-up."""
    url = f"{registry.url}/ml/vision/-/data/x"
    known = {"Authorization": f"Bearer {TOKENS['reporter']}"}
    with requests.Session() as warm:  # the good token is seen by every worker process before the flood
        for _ in range(8):
            assert warm.head(url, headers=known, timeout=10).status_code == 404
    fresh = f"glpat-never-seen-{uuid.uuid4().hex[:12]}"
    gitlab.world.access_tokens[fresh] = {
        "token": fresh,
        "user": "rita",
        "scopes": ["api"],
        "id": 999,
        "user_id": 4,
    }
    made_up = [f"{prefix}{uuid.uuid4().hex}" for _ in range(200)]
    before = gitlab.world.total_calls()
    statuses: list[int] = []
    with requests.Session() as session:
        for i, token in enumerate(made_up):
            headers = {"Authorization": f"Bearer {token}"}
            statuses.append(session.head(url, headers=headers, timeout=10).status_code)
            if i == 150:  # deep in the flood, from the same address
                assert (
                    session.head(url, headers={"Authorization": f"Bearer {fresh}"}, timeout=10).status_code
                    == 404
                )
        calls = gitlab.world.total_calls() - before
        assert calls <= 200 * kinds + 3, dict(gitlab.world.calls)  # +3: the new token: self, project, role
        assert set(statuses) <= {401, 429} and statuses.count(429) > 100
        before = gitlab.world.total_calls()
        again = [
            session.head(url, headers={"Authorization": f"Bearer {t}"}, timeout=10).status_code
            for t in made_up
        ]
    assert gitlab.world.total_calls() == before and set(again) <= {401, 429}
    assert requests.head(url, headers=known, timeout=10).status_code == 404
