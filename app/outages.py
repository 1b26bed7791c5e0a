"""Riding out a dependency's short outage (the bucket or the database restarting): a call repeated for a
bounded time while it fails in a way that says "not now" (tenacity), so a blip costs a wait and not a
failed upload."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential

T = TypeVar("T")


def ride_out(
    call: Callable[[], T],
    transient: Callable[[BaseException], bool],
    patience: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, repeated while it fails with an error `transient` accepts and the next try would still
    start within `patience` seconds, waiting 0.1 s, 0.2 s, ... up to 2 s between tries; the last error is
    raised as it was."""
    retrying = Retrying(
        retry=retry_if_exception(transient),
        stop=stop_before_delay(patience),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
