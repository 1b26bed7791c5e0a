"""A bounded, thread-safe map whose entries expire (cachetools' TLRUCache: a time to live per entry), with
one loader at a time per key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

V = TypeVar("V")


class _KeyLoad:
    """The lock one key's loaders take turns on, and how many callers hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class TTLCache(Generic[V]):
    """LRU-bounded cache of values that each carry their own time to live; an entry is kept `stale_grace`
    seconds past it for `stale` (reads while the source is down)."""

    def __init__(
        self, *, max_size: int, stale_grace: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stale_grace = stale_grace
        self._clock = clock
        # values are (expires at, value); cachetools drops an entry once its grace is over too
        self._entries: TLRUCache[Hashable, tuple[float, V], float] = TLRUCache(
            maxsize=max_size, ttu=lambda _key, entry, _now: entry[0] + stale_grace, timer=clock
        )
        self._lock = threading.Lock()  # cachetools' caches are not thread-safe
        self._loading: dict[Hashable, _KeyLoad] = {}

    def get(self, key: Hashable) -> V | None:
        """The live value (None when absent or expired)."""
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def stale(self, key: Hashable) -> V | None:
        """A value that expired less than the stale grace ago (or is still live)."""
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def put(self, key: Hashable, value: V, ttl: float) -> None:
        """Keep value for ttl seconds (a ttl of 0 or less keeps nothing and leaves the entry as it is)."""
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)

    def load(self, key: Hashable, loader: Callable[[], tuple[V, float]]) -> tuple[V, bool]:
        """The cached value, or the loader's (value, ttl); concurrent misses on one key load once (when the
        loader raises, the next waiter loads). Says whether it was a hit (the loader not called by this
        caller)."""
        value = self.get(key)
        if value is not None:
            return value, True
        with self._lock:
            turn = self._loading.setdefault(key, _KeyLoad())
            turn.users += 1
        try:
            with turn.lock:
                value = self.get(key)
                if value is not None:
                    return value, True
                value, ttl = loader()
                self.put(key, value, ttl)
                return value, False
        finally:
            with self._lock:  # the last caller of this key's turn (loaded, hit or raised) drops its lock
                turn.users -= 1
                if not turn.users:
                    del self._loading[key]
