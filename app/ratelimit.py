"""Rate limits per key (a credential's sha256, or a client address), counted by the `limits` library: in
this process (its memory storage), or, with Redis/Valkey, one count shared by every process and replica."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

log = logging.getLogger(__name__)


class InlineMemoryStorage(MemoryStorage):
    """`limits`' memory storage without its expiry thread: that one starts a new `threading.Timer` on every
    count once the last has fired (10 ms later), so a worker whose requests are more than 10 ms apart
    started an OS thread per request (~0.4 ms of CPU and up to 2 ms of wall time, measured). Counts still
    expire when read (the storage's `get` checks the expiry); the keys nobody reads any more are dropped
    here, inline, at most once per EXPIRE_EVERY seconds."""

    EXPIRE_EVERY = 1.0

    def __init__(self, *, wrap_exceptions: bool = False) -> None:
        super().__init__(wrap_exceptions=wrap_exceptions)
        self.timer.cancel()  # the one the constructor started
        self._expired_at = time.time()  # limits' own clock (its expiries are time.time)
        self._expiring = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # overrides limits' private hook
        now = time.time()
        if now - self._expired_at < self.EXPIRE_EVERY or not self._expiring.acquire(blocking=False):
            return
        try:
            self._expired_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]  # limits' private sweep
        finally:
            self._expiring.release()


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
            else InlineMemoryStorage(wrap_exceptions=True)
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
