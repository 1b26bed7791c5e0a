"""Rate limits per key (a credential's sha256, or a client address), counted by the `limits` library: in
this process (its memory storage), or, with Redis/Valkey, one count shared by every process and replica."""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger(__name__)


class Limiter(Protocol):
    def take(self, key: str, *, spend: bool = True, cost: int = 1) -> float:
        """0 when the request may go ahead (spending `cost` unless `spend` is false), else the seconds
        until it may."""
        ...


class RateLimiter:
    """`burst` requests per `burst / rate` seconds (whole seconds, at least one) per key, in a sliding
    window (`limits`' sliding window counter: two counters a key, in this process's memory or in
    Redis/Valkey at `storage_url`); rate 0 turns it off. Storage unreachable: requests go ahead (a
    limiter outage must not become a registry outage), logged once a minute."""

    def __init__(
        self, *, rate: float, burst: int, name: str = "requests", storage_url: str | None = None
    ) -> None:
        self._off = rate <= 0
        seconds = max(1, math.ceil(burst / rate)) if rate > 0 else 1
        self._item = RateLimitItemPerSecond(max(1, burst), seconds, namespace=f"registry-{name}")
        storage = (
            storage_from_string(storage_url, wrap_exceptions=True)
            if storage_url
            else MemoryStorage(wrap_exceptions=True)
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._warned = -math.inf

    def take(self, key: str, *, spend: bool = True, cost: int = 1) -> float:
        """0 when the request may go ahead (spending `cost` unless `spend` is false: then it asks whether
        one more would), else the seconds until it may."""
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
            if spend and 0 < stats.remaining < cost:
                # a refused hit is not counted: spend what is left, or a cost larger than the rest
                # would never fill the window and `test` would keep saying "one more may go"
                self._limiter.hit(self._item, key, cost=stats.remaining)
        except StorageError as e:
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning(  # only Redis can be: memory never is
                    "rate limit not counted: Redis is unreachable (%s)", e.storage_error.__class__.__name__
                )
            return 0.0
        return max(0.1, stats.reset_time - time.time())


class SharedRateLimiter(RateLimiter):
    """The same limit for every process and replica, counted in Redis/Valkey at `storage_url`."""

    def __init__(self, storage_url: str, *, name: str, rate: float, burst: int) -> None:
        super().__init__(rate=rate, burst=burst, name=name, storage_url=storage_url)
