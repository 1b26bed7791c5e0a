"""Rate limits per credential: `limits`' sliding window in memory or Redis, and 429 with Retry-After from the
data plane."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app.ratelimit import RateLimiter
from tests.conftest import bearer


class Clock:
    """time.time for `limits` and the limiter: starts mid-window (its windows are aligned to the epoch)."""

    def __init__(self) -> None:
        self.now = 1_000_000.5

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


def test_a_key_gets_its_burst_then_waits_for_the_window_to_slide(clock: Clock) -> None:
    limiter = RateLimiter(rate=2, burst=3)  # 3 requests per 2 s (burst / rate, in whole seconds)
    assert [limiter.take("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("k") == 1.5  # until the window ends; then the past window's weight slides out
    assert limiter.take("other") == 0  # keys are independent
    clock.now += 1.0
    assert limiter.take("k") == 0.5
    clock.now += 0.7
    assert limiter.take("k") == 0
    assert limiter.take("k") > 0


def test_over_a_long_run_a_key_gets_the_rate_and_no_more(clock: Clock) -> None:
    limiter = RateLimiter(rate=10, burst=20)
    allowed = 0
    for _ in range(1000):  # 100 requests a second for 10 s
        clock.now += 0.01
        allowed += limiter.take("k") == 0
    assert 10 * 10 <= allowed <= 20 + 10 * 10


def test_a_client_that_honours_the_wait_gets_through_within_a_window(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=5)
    assert all(limiter.take("k") == 0 for _ in range(5))
    waited = 0.0
    while wait := limiter.take("k"):
        assert wait > 0
        waited, clock.now = waited + wait, clock.now + wait
    assert waited <= 5


def test_refused_requests_do_not_spend(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.take("k") == 0
    for _ in range(5):
        assert limiter.take("k") > 0
    clock.now += 1.0  # half the next window: the spent one weighs 0.5 (six would weigh 3)
    assert limiter.take("k") == 0


def test_asking_spends_nothing_and_a_cost_spends_that_much(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=5)
    assert all(limiter.take("k", spend=False) == 0 for _ in range(10))
    assert limiter.take("k", cost=3) == 0
    assert limiter.take("k", cost=3) > 0  # 3 + 3 > 5: refused, and what was left is spent
    assert limiter.take("k", cost=2) > 0  # (else a cost above the rest would never fill the window)
    assert limiter.take("k", spend=False) > 0 and limiter.take("k") > 0


def test_zero_rate_is_off() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    assert all(limiter.take("k") == 0 for _ in range(1000))


def test_memory_is_bounded_by_the_live_windows(clock: Clock) -> None:
    limiter = RateLimiter(rate=1, burst=1)
    for i in range(100):
        limiter.take(f"k{i}")
    counters = limiter._limiter.storage.storage
    assert len(counters) == 100
    clock.now += 3  # the windows of every key are over
    limiter.take("new")  # `limits` drops expired counters shortly after a hit
    deadline = time.monotonic() + 5
    while len(counters) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(counters) == 1


def test_counting_starts_no_thread(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """`limits`' memory storage started a Timer thread per hit once the last had fired (10 ms): a thread
    per request in a worker whose requests are 10 ms apart. Expired counters still go, inline."""
    limiter = RateLimiter(rate=1000, burst=1000)
    started: list[threading.Thread] = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread))
    for i in range(20):
        clock.now += 0.02  # past the storage's 10 ms timer each time
        limiter.take(f"k{i}")
    assert started == []
    clock.now += 3
    limiter.take("new")
    assert list(limiter._limiter.storage.storage) == [
        k for k in limiter._limiter.storage.storage if "new" in k
    ]


def test_a_burst_over_the_limit_gets_429_with_retry_after(
    make_app: Callable[..., Flask], clock: Clock
) -> None:
    """With the clock still: `limits`' windows are aligned to the epoch, and requests that straddle a
    window's end are weighed against the past window, which lets one more in (a flaky count)."""
    client = make_app(rate_limit=1, rate_limit_burst=5).test_client()
    statuses = [client.head("/ml/vision/-/data/x", headers=bearer("developer")).status_code for _ in range(8)]
    assert statuses == [404] * 5 + [429] * 3
    refused = client.get("/ml/vision/-/data/x", headers=bearer("developer"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json["error"]["code"] == "rate_limited"
    # another credential has its own bucket
    assert client.head("/ml/vision/-/data/x", headers=bearer("reporter")).status_code == 404
    assert client.get("/-/health").status_code == 200  # operations are not limited


def test_the_api_shares_the_credentials_bucket(make_app: Callable[..., Flask], clock: Clock) -> None:
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


def test_a_cost_larger_than_what_is_left_fills_the_window() -> None:
    """An unprefixed token's refusal costs 3 (one per kind it was tried as): with 1 left, the hit is
    refused, and what is left must be spent, or the address would never be over its budget (seen in CI:
    73 of 200 junk tokens answered 429 instead of nearly all)."""
    from app.ratelimit import RateLimiter

    limiter = RateLimiter(rate=0.5, burst=6, name="refusals-test")
    assert limiter.take("addr:a", cost=3) == 0 and limiter.take("addr:a", cost=1) == 0
    assert limiter.take("addr:a", cost=1) == 0  # 5 of 6 spent
    assert limiter.take("addr:a", cost=3) > 0  # refused: more than is left
    assert limiter.take("addr:a", spend=False) > 0  # and nothing is left now
