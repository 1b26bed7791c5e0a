"""Anonymous requests to project paths nobody has asked about lately spend a budget of GitLab look-ups per
client address; past it they are told to retry later (429), and nothing anyone else does is affected."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Flask

from scripts.harness import Simulator
from tests.conftest import bearer


def random_path() -> str:
    return f"/g{uuid.uuid4().hex[:8]}/p{uuid.uuid4().hex[:8]}/-/data/x"


def test_300_anonymous_requests_to_random_paths_cost_at_most_20_gitlab_calls(
    make_app: Callable[..., Flask], simulator: Simulator
) -> None:
    client = make_app(trusted_proxies="127.0.0.0/8").test_client()
    public = client.head("/ml/open-data/-/data/x")  # a public project, looked up before the scan
    before = simulator.world.total_calls()
    statuses = [client.head(random_path(), headers={"X-Forwarded-For": "203.0.113.7"}) for _ in range(300)]
    calls = simulator.world.total_calls() - before
    assert calls <= 20, dict(simulator.world.calls)
    refused = [r for r in statuses if r.status_code == 429]
    assert len(refused) >= 280 and all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert refused[0].status.startswith("429 Too many look-ups of projects without a GitLab token")
    assert {r.status_code for r in statuses} == {404, 429}  # "not found, or it needs a GitLab token"
    # what is cached is answered as before, for the scanner too; and other clients are not held up
    assert (
        client.head("/ml/open-data/-/data/x", headers={"X-Forwarded-For": "203.0.113.7"}).status
        == public.status
    )
    assert client.head(random_path(), headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 404
    assert (
        client.head(
            "/ml/vision/-/data/x", headers={**bearer("reporter"), "X-Forwarded-For": "203.0.113.7"}
        ).status_code
        == 404
    )
