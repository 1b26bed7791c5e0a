"""Two replicas (separate gunicorn masters) on one PostgreSQL, one SeaweedFS bucket and one Redis, as a
scaled-out deployment runs: the per-credential rate limit holds for both together, the shared auth
cache asks GitLab once per credential, and the same objects pushed through both at once end consistent."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from scripts.harness import (
    RedisServer,
    RegistryServer,
    SeaweedFS,
    Simulator,
    serve_registry,
    start_redis,
    start_registry,
)
from tests.conftest import TOKENS, s3_registry_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("REGISTRY_TEST_POSTGRES_URL"),
        reason="replicas share PostgreSQL: runs in that pass",
    ),
]
RATE, BURST = 10, 20
DEV = {"Authorization": f"Bearer {TOKENS['developer']}"}


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except FileNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing in CI: .ci/run installs Debian's redis-server")
        pytest.skip("no redis-server: apt-get install redis-server")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator, seaweedfs: SeaweedFS, redis: RedisServer
) -> Iterator[tuple[RegistryServer, RegistryServer]]:
    first = start_registry(
        tmp_path_factory.mktemp("replica-a"),
        gitlab.url,
        **s3_registry_env(seaweedfs),
        REGISTRY_REDIS_URL=redis.url,
        REGISTRY_RATE_LIMIT=str(RATE),
        REGISTRY_RATE_LIMIT_BURST=str(BURST),
    )
    second = serve_registry(
        tmp_path_factory.mktemp("replica-b"), dict(first.env)
    )  # same index, bucket, Redis
    yield first, second
    second.stop()
    first.stop()


def test_one_credential_costs_gitlab_one_round_across_replicas(
    replicas: tuple[RegistryServer, RegistryServer], gitlab: Simulator
) -> None:
    before = gitlab.world.total_calls()
    for i in range(8):  # both masters, two workers each: every process asks its cache
        replica = replicas[i % 2]
        assert (
            requests.head(f"{replica.url}/ml/vision/-/data/none/{i}", headers=DEV, timeout=10).status_code
            == 404
        )
        time.sleep(0.6)  # stay under the rate limit here
    assert gitlab.world.total_calls() - before <= 3  # token self, project, membership: once


def test_the_rate_limit_holds_for_all_replicas_together(
    replicas: tuple[RegistryServer, RegistryServer],
) -> None:
    token = {"Authorization": f"Bearer {TOKENS['maintainer']}"}
    requests.head(f"{replicas[0].url}/ml/vision/-/data/warm", headers=token, timeout=10)  # GitLab asked once
    time.sleep(2 * BURST / RATE)  # a fresh window
    started, answers = time.monotonic(), []
    with requests.Session() as session:
        for i in range(80):
            replica = replicas[i % 2]
            answers.append(
                session.head(f"{replica.url}/ml/vision/-/data/r/{i}", headers=token, timeout=10).status_code
            )
    elapsed = time.monotonic() - started
    allowed = sum(status != 429 for status in answers)
    assert allowed <= BURST + RATE * elapsed + 2, (allowed, elapsed)  # one limit, not one per replica
    assert allowed >= BURST // 2 and 429 in answers


def _patiently(method: str, url: str, **kwargs: Any) -> requests.Response:
    """The request, sent again after Retry-After while the shared rate limit answers 429 (20 tries)."""
    for _ in range(20):
        answer = requests.request(method, url, timeout=30, **kwargs)
        if answer.status_code != 429:
            return answer
        time.sleep(float(answer.headers.get("Retry-After", "1")))
    return answer


def test_the_same_objects_pushed_through_both_end_consistent(
    replicas: tuple[RegistryServer, RegistryServer], redis: RedisServer
) -> None:
    bodies = [os.urandom(1000 + i) for i in range(30)]
    token = {"Authorization": f"Bearer {TOKENS['owner']}"}  # another credential: its own rate budget

    def put(item: tuple[int, bytes]) -> int:
        index, body = item
        md5 = hashlib.md5(body).hexdigest()
        url = f"{replicas[index % 2].url}/ml/vision/-/data/both/files/md5/{md5[:2]}/{md5[2:]}"
        return _patiently("PUT", url, data=body, headers=token).status_code

    work = [(i, body) for i, body in enumerate(bodies)] + [(i + 1, body) for i, body in enumerate(bodies)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(put, work))
    assert set(statuses) <= {200, 201}, statuses
    assert statuses.count(201) == len(bodies)  # each object created once, the twin answered "identical"
    listing = _patiently(  # the same credential: the shared limit may still say wait
        "GET",
        f"{replicas[0].url}/api/v1/projects/101/objects",
        params={"prefix": "both/", "limit": 100},
        headers=token,
    )
    assert listing.status_code == 200, listing.text
    listed = listing.json()["objects"]
    assert len(listed) == len(bodies)
    assert len(replicas[0].stored_keys("projects/101/both/")) == len(bodies)
