"""A bounded, thread-safe map whose entries expire, with one loader at a time per key."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """LRU-bounded cache of values that each carry their own time to live."""

    def __init__(self, *, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> V | None:
        """The live value; expired entries are kept (for `stale`) until evicted or replaced."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def stale(self, key: Hashable, grace: float) -> V | None:
        """A value that expired less than `grace` seconds ago (or is still live)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry[1] if entry is not None and entry[0] + grace > self._clock() else None

    def put(self, key: Hashable, value: V, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def load(self, key: Hashable, loader: Callable[[], tuple[V, float]]) -> tuple[V, bool]:
        """The cached value, or the loader's (value, ttl); concurrent misses on one key load once. Says
        whether it was a hit (the loader not called by this caller)."""
        value = self.get(key)
        if value is not None:
            return value, True
        hit = True
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key)
            if value is None:
                value, ttl = loader()
                hit = False
                self.put(key, value, ttl)
        with self._lock:
            self._loading.pop(key, None)
        return value, hit
