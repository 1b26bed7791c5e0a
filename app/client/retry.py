"""The client commands' retry policy: urllib3's `Retry` on the session's adapter (backoff, the status
list, `Retry-After` honoured), with GitLab's rule for 429: it is no failure but a wait GitLab asks for,
retried as long as it asks within `patience` seconds in all. Each retry is tallied for the summary."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import RequestHistory, Retry

RETRIED = frozenset({429, 500, 502, 503, 504})


class Tally:
    """How many retries a command's requests took, across threads."""

    def __init__(self) -> None:
        self.count, self._lock = 0, threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


class PatientRetry(Retry):
    """`Retry` that lets a 429 wait as long as its Retry-After asks without spending an attempt, until the
    waits would pass `patience` seconds; then the 429 is the answer."""

    def __init__(
        self,
        *args: Any,
        patience: float = 900,
        waited: float = 0.0,
        tally: Tally | None = None,
        nap: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.patience, self.waited, self.nap = patience, waited, nap
        self.tally = tally if tally is not None else Tally()

    def new(self, **kw: Any) -> Self:
        mine = {"patience": self.patience, "waited": self.waited, "tally": self.tally, "nap": self.nap}
        return super().new(**(mine | kw))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if response is not None and response.status == 429:
            wait = self._wait(response)
            if self.waited + wait > self.patience:
                raise MaxRetryError(_pool, url or "", ResponseError("still 429 after the patience"))  # type: ignore[arg-type]
            history = (*self.history, RequestHistory(method, url, None, 429, None))
            retried = self.new(history=history, waited=self.waited + wait)
        else:
            retried = super().increment(method, url, response, error, _pool, _stacktrace)
        self.tally.add()
        return retried

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:  # a server's garbage is no reason to stop: back off instead
            return None

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        wait = self._wait(response)
        if wait > 0:
            self.nap(wait)

    def _wait(self, response: BaseHTTPResponse | None) -> float:
        asked = self.get_retry_after(response) if response is not None else None
        return asked if asked is not None and self.respect_retry_after_header else self.get_backoff_time()


def patient_retry(
    *, attempts: int = 8, patience: float = 900, nap: Callable[[float], None] = time.sleep
) -> PatientRetry:
    """The policy of every client command: `attempts` tries for 5xx and dropped connections (pauses of
    2, 4, 8… s up to 60), GitLab's 429s as long as it asks within `patience`."""
    return PatientRetry(
        total=attempts - 1,
        connect=None,
        read=None,
        status=None,
        other=None,
        allowed_methods=None,  # every method: parts and batch calls are safe to send again
        status_forcelist=RETRIED,
        backoff_factor=1,
        backoff_max=60,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer is the answer: callers say what it was
        raise_on_redirect=False,
        patience=patience,
        nap=nap,
    )
