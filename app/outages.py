"""Riding out a dependency's short outage (the bucket or the database restarting): a call repeated for a
bounded time while it fails in a way that says "not now", so a blip costs a wait and not a failed
upload. The call that succeeds at once (nearly every one) costs nothing more than the call: this runs
on every bucket request."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_WAIT = 0.1  # seconds; doubled after every failure, up to MAX_WAIT
MAX_WAIT = 2.0


def ride_out(
    call: Callable[[], T],
    transient: Callable[[BaseException], bool],
    patience: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, repeated while it fails with an error `transient` accepts and the next try would still
    start within `patience` seconds of the first, waiting 0.1 s, 0.2 s, ... up to 2 s between tries; the
    last error is raised as it was."""
    started, wait = time.monotonic(), FIRST_WAIT
    while True:
        try:
            return call()
        except BaseException as error:
            if not transient(error):
                raise
            if time.monotonic() - started + wait >= patience:
                raise
        sleep(wait)
        wait = min(wait * 2, MAX_WAIT)
