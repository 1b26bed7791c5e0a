"""The worker's jobs: plain functions over the services (deletion.py, reconcile.py, usage_sweep.py,
cleanup.py), scheduled by scheduler.py in the worker process and called directly by tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of up to `size` items (itertools.batched arrives with Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
