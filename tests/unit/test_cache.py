"""The in-process TTL cache: expiry, the stale grace, the LRU bound, and one loader per key at a time."""

from __future__ import annotations

import threading
import time

import pytest

from app.cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_values_expire_after_their_own_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str] = TTLCache(max_size=10, clock=clock)
    cache.put("short", "a", ttl=5)
    cache.put("long", "b", ttl=50)
    cache.put("never", "c", ttl=0)  # nothing to keep
    assert (cache.get("short"), cache.get("long"), cache.get("never")) == ("a", "b", None)
    clock.now += 5
    assert (cache.get("short"), cache.get("long")) == (None, "b")


def test_a_value_stays_readable_as_stale_for_the_grace_only() -> None:
    clock = Clock()
    cache: TTLCache[str] = TTLCache(max_size=10, stale_grace=60, clock=clock)
    cache.put("k", "v", ttl=10)
    assert cache.stale("k") == "v"  # live values are stale-readable too
    clock.now += 30
    assert cache.get("k") is None and cache.stale("k") == "v"
    clock.now += 39
    assert cache.stale("k") == "v"
    clock.now += 2
    assert cache.stale("k") is None
    without: TTLCache[str] = TTLCache(max_size=10, clock=clock)
    without.put("k", "v", ttl=10)
    clock.now += 10
    assert without.stale("k") is None


def test_a_zero_ttl_leaves_the_entry_as_it_was() -> None:
    cache: TTLCache[str] = TTLCache(max_size=10)
    cache.put("k", "old", ttl=60)
    cache.put("k", "new", ttl=0)
    assert cache.get("k") == "old"


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: TTLCache[int] = TTLCache(max_size=2)
    cache.put("a", 1, ttl=60)
    cache.put("b", 2, ttl=60)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3, ttl=60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_load_calls_the_loader_on_a_miss_only() -> None:
    cache: TTLCache[str] = TTLCache(max_size=10)
    calls: list[str] = []

    def loader() -> tuple[str, float]:
        calls.append("x")
        return "value", 60

    assert cache.load("k", loader) == ("value", False)
    assert cache.load("k", loader) == ("value", True)
    assert calls == ["x"]


def test_concurrent_misses_on_one_key_load_once_and_wait_for_the_answer() -> None:
    cache: TTLCache[str] = TTLCache(max_size=10)
    calls: list[int] = []
    started = threading.Event()

    def slow() -> tuple[str, float]:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return "answer", 60

    results: list[tuple[str, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(cache.load("k", slow))) for _ in range(8)]
    threads[0].start()
    started.wait(5)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert calls == [1]
    assert sorted(results) == [("answer", False)] + [("answer", True)] * 7
    assert cache._loading == {}  # no per-key lock is left behind


def test_different_keys_load_at_the_same_time() -> None:
    cache: TTLCache[str] = TTLCache(max_size=10)
    both = threading.Barrier(2, timeout=5)

    def loader() -> tuple[str, float]:
        both.wait()  # would time out if one key's loader waited for the other's
        return "v", 60

    threads = [threading.Thread(target=cache.load, args=(key, loader)) for key in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert (cache.get("a"), cache.get("b")) == ("v", "v")


def test_a_loader_that_raises_leaves_no_lock_behind_and_the_next_caller_loads() -> None:
    cache: TTLCache[str] = TTLCache(max_size=10)

    def failing() -> tuple[str, float]:
        raise RuntimeError("source down")

    for key in range(100):
        with pytest.raises(RuntimeError):
            cache.load(key, failing)
    assert cache._loading == {}  # a leaked entry per failing key grew without bound before
    assert cache.load(1, lambda: ("back", 60)) == ("back", False)


def test_waiters_of_a_loader_that_raises_load_in_turn() -> None:
    cache: TTLCache[str] = TTLCache(max_size=10)
    started, release = threading.Event(), threading.Event()
    active, most = [0], [0]
    guard = threading.Lock()

    def loader() -> tuple[str, float]:
        with guard:
            active[0] += 1
            most[0] = max(most[0], active[0])
        started.set()
        release.wait(5)
        time.sleep(0.02)
        with guard:
            active[0] -= 1
        raise RuntimeError("source down")

    failures: list[BaseException] = []

    def call() -> None:
        try:
            cache.load("k", loader)
        except RuntimeError as e:
            failures.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    threads[0].start()
    started.wait(5)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(failures) == 4 and most[0] == 1  # each loaded, one at a time
    assert cache._loading == {}
