"""Riding out a dependency's short outage (the bucket or the database restarting): a call repeated for a
bounded time while it fails in a way that says "not now", so a blip costs a wait and not a failed upload."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def ride_out(
    call: Callable[[], T],
    transient: Callable[[BaseException], bool],
    patience: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, repeated while it fails with an error `transient` accepts and `patience` seconds have
    not passed, waiting 0.1 s, 0.2 s, ... up to 2 s between tries; the last error is raised."""
    deadline, pause = time.monotonic() + patience, 0.1
    while True:
        try:
            return call()
        except Exception as error:
            if not transient(error) or time.monotonic() + pause > deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 2.0)
