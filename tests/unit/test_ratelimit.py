"""Rate limits per credential: a token bucket, and 429 with Retry-After from the data plane."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app.ratelimit import RateLimiter
from tests.conftest import bearer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("k") == 0.5  # one token comes back every 0.5 s
    assert limiter.take("other") == 0  # keys are independent
    clock.now += 0.5
    assert limiter.take("k") == 0
    assert limiter.take("k") > 0


def test_refused_requests_do_not_spend_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.take("k") == 0
    for _ in range(5):
        assert limiter.take("k") > 0
    clock.now += 1.0
    assert limiter.take("k") == 0


def test_zero_rate_is_off() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    assert all(limiter.take("k") == 0 for _ in range(1000))


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=10)
    for i in range(100):
        limiter.take(f"k{i}")
    assert len(limiter._buckets) == 10


def test_a_burst_over_the_limit_gets_429_with_retry_after(make_app: Callable[..., Flask]) -> None:
    client = make_app(rate_limit=1, rate_limit_burst=5).test_client()
    statuses = [client.head("/ml/vision/-/data/x", headers=bearer("developer")).status_code for _ in range(8)]
    assert statuses == [404] * 5 + [429] * 3
    refused = client.get("/ml/vision/-/data/x", headers=bearer("developer"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json["error"]["code"] == "rate_limited"
    # another credential has its own bucket
    assert client.head("/ml/vision/-/data/x", headers=bearer("reporter")).status_code == 404
    assert client.get("/-/health").status_code == 200  # operations are not limited


def test_the_api_shares_the_credentials_bucket(make_app: Callable[..., Flask]) -> None:
    client = make_app(rate_limit=1, rate_limit_burst=3).test_client()
    assert client.head("/ml/vision/-/data/x", headers=bearer("developer")).status_code == 404
    assert client.get("/api/v1/projects/101", headers=bearer("developer")).status_code == 200
    assert client.get("/api/v1/projects/101/objects", headers=bearer("developer")).status_code == 200
    refused = client.get("/api/v1/projects/101", headers=bearer("developer"))
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert client.get("/api/v1/openapi.json").status_code == 200  # another bucket: no credential


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    import os

    from scripts.harness import start_redis

    try:
        server = start_redis(tmp_path / "redis")
    except FileNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing in CI: .ci/run installs Debian's redis-server")
        pytest.skip("no redis-server: apt-get install redis-server")
    yield server.url
    server.stop()


def test_a_shared_limit_is_one_count_for_every_limiter(redis_url: str) -> None:
    from app.ratelimit import SharedRateLimiter

    one = SharedRateLimiter(redis_url, name="requests", rate=2, burst=4)
    other = SharedRateLimiter(redis_url, name="requests", rate=2, burst=4)  # another process, same Redis
    assert other.take("k", spend=False) == 0  # asking spends nothing
    assert [one.take("k") if i % 2 else other.take("k") for i in range(4)] == [0.0] * 4
    assert one.take("k") > 0 and other.take("k") > 0  # the fifth, from either, waits
    assert one.take("another key") == 0
    refused = SharedRateLimiter(redis_url, name="refused", rate=2, burst=4)
    assert refused.take("k") == 0  # another limit: another namespace


def test_an_unreachable_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    from app.ratelimit import SharedRateLimiter

    limiter = SharedRateLimiter("redis://127.0.0.1:9/0", name="requests", rate=1, burst=1)
    assert limiter.take("k") == 0 and limiter.take("k") == 0
    assert caplog.text.count("rate limit not counted: Redis is unreachable") == 1  # once a minute
