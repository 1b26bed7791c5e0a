"""A project a credential may not see and a project that does not exist are the same to that credential:
the same answer, the same GitLab calls, the same time (within noise) and the same caching, for every kind
of credential (the registry's service token sees every project, so this is the registry's doing)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.harness import Simulator
from tests.conftest import TOKENS

SERVICE = "glpat-service-admin-token-1"
AUDIENCE = "https://registry.test"
ROUNDS = 20


def credential(kind: str, simulator: Simulator) -> dict[str, str]:
    """A credential of ml/vision (job 5001's, or its deploy token, or Devon the Developer's token)."""
    if kind == "id token":
        return {
            "Authorization": "Bearer "
            + simulator.world.mint_id_token("glcbt-vision-running-job-5001", AUDIENCE)
        }
    return {
        "job token": {"JOB-TOKEN": "glcbt-vision-running-job-5001"},
        "deploy token": {"DEPLOY-TOKEN": "gldt-vision-read-write-0001"},
        "personal access token": {"PRIVATE-TOKEN": TOKENS["developer"]},
    }[kind]


@pytest.fixture
def client(make_app: Callable[..., Flask], simulator: Simulator) -> FlaskClient:
    """Twenty private projects nobody from ml/vision may see, in the group `other` (which exists)."""
    for i in range(ROUNDS):
        simulator.world.projects[900 + i] = {
            "id": 900 + i,
            "path_with_namespace": f"other/hidden-{i:02}",
            "visibility": "private",
            "members": {},
        }
    return make_app(
        gitlab_service_token=SERVICE, id_token_audience=AUDIENCE, auth_failure_ttl=1
    ).test_client()


def timed(
    client: FlaskClient, simulator: Simulator, path: str, headers: dict[str, str]
) -> tuple[str, int, float]:
    """The status line (the project's name taken out), the GitLab calls and the seconds of one request."""
    before, start = simulator.world.total_calls(), time.perf_counter()
    answer = client.get(f"/{path}/-/data/x", headers=headers)
    seconds = time.perf_counter() - start
    return answer.status.replace(path, "P"), simulator.world.total_calls() - before, seconds


@pytest.mark.parametrize("kind", ["job token", "deploy token", "id token", "personal access token"])
def test_hidden_and_missing_projects_cost_the_same(
    client: FlaskClient, simulator: Simulator, kind: str
) -> None:
    headers = credential(kind, simulator)
    assert client.get("/ml/vision/-/data/x", headers=headers).status_code == 404  # the token is known now
    hidden: list[tuple[str, int, float]] = []
    missing: list[tuple[str, int, float]] = []
    for i in range(ROUNDS):  # interleaved, each first in turn, so that drift in the machine's speed is shared
        pair = [(hidden, f"other/hidden-{i:02}"), (missing, f"other/missing-{i:02}")]
        for results, path in pair if i % 2 else reversed(pair):
            results.append(timed(client, simulator, path, headers))
    assert (
        {status for status, _, _ in hidden}
        == {status for status, _, _ in missing}
        == {"404 Project P not found"}
    )
    hidden_calls, missing_calls = [c for _, c, _ in hidden], [c for _, c, _ in missing]
    assert hidden_calls == missing_calls and len(set(hidden_calls)) == 1, (hidden_calls, missing_calls)
    hidden_median = statistics.median(s for _, _, s in hidden)
    missing_median = statistics.median(s for _, _, s in missing)
    ratio = max(hidden_median, missing_median) / min(hidden_median, missing_median)
    print(
        f"{kind}: {hidden_calls[0]} GitLab calls each; medians {hidden_median * 1000:.1f} ms hidden,"
        f" {missing_median * 1000:.1f} ms missing"
    )
    assert ratio < 1.5, (hidden_median, missing_median)

    # cached alike: both answered from the cache at once, both asked again after the failure TTL (1 s)
    # (the last round's pair: asked just now, well inside the TTL even on a loaded machine)
    last = (f"other/hidden-{ROUNDS - 1:02}", f"other/missing-{ROUNDS - 1:02}")
    again = [timed(client, simulator, path, headers)[1] for path in last]
    assert again == [0, 0]
    time.sleep(1.2)
    later = [timed(client, simulator, path, headers)[1] for path in last]
    assert later == [hidden_calls[0], missing_calls[0]]
