"""Rate limits per credential: a token bucket, and 429 with Retry-After from the data plane."""

from __future__ import annotations

from collections.abc import Callable

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
