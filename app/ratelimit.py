"""Rate limits per key (a credential's sha256, or a client address): a token bucket in this process, or,
with Redis/Valkey, one count shared by every process and replica (the `limits` library)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Limiter(Protocol):
    def take(self, key: str, *, spend: bool = True, cost: int = 1) -> float:
        """0 when the request may go ahead (spending `cost` unless `spend` is false), else the seconds
        until it may."""
        ...


class RateLimiter:
    """`rate` requests per second with bursts of up to `burst`; rate 0 turns it off."""

    def __init__(
        self, *, rate: float, burst: int, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated)
        self._lock = threading.Lock()

    def take(self, key: str, *, spend: bool = True, cost: int = 1) -> float:
        """0 when the request may go ahead (spending `cost` tokens unless `spend` is false), else the
        seconds until it may."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - updated) * self._rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
            self._buckets[key] = (tokens - cost if spend and not wait else tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return wait


class SharedRateLimiter:
    """The same limit for every process and replica, counted in Redis/Valkey: `burst` requests per
    `burst / rate` seconds in a sliding window (`limits`' sliding window counter: two counters a key).
    Redis unreachable: requests go ahead (a limiter outage must not become a registry outage), logged."""

    def __init__(self, storage_url: str, *, name: str, rate: float, burst: int) -> None:
        from limits import RateLimitItemPerSecond
        from limits.storage import storage_from_string
        from limits.strategies import SlidingWindowCounterRateLimiter

        self._off = rate <= 0
        seconds = max(1, math.ceil(burst / rate)) if rate > 0 else 1
        self._item = RateLimitItemPerSecond(max(1, burst), seconds, namespace=f"registry-{name}")
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage_url))
        self._warned = 0.0

    def take(self, key: str, *, spend: bool = True, cost: int = 1) -> float:
        if self._off:
            return 0.0
        try:
            allowed = (
                self._limiter.hit(self._item, key, cost=cost)
                if spend
                else self._limiter.test(self._item, key)
            )
            if allowed:
                return 0.0
            stats = self._limiter.get_window_stats(self._item, key)
            return max(0.1, stats.reset_time - time.time())
        except Exception as e:  # redis' errors are many; every one means "cannot count"
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("rate limit not counted: Redis is unreachable (%s)", e.__class__.__name__)
            return 0.0
