"""The client commands' thread pools: a Ctrl-C (or any error) in the waiting thread drops the queued work
at once instead of sending it all before the command can stop."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def worker_pool(jobs: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of `jobs` threads. The block ends normally: wait for the work. It raises: cancel what has not
    started and do not wait for what has (the command is ending; `data-registry` exits without them)."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
