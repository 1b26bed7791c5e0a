"""A thread's reads of a request body, paced: a client must send at least `PACE_BYTES` per `PACE_WINDOW`
seconds that a thread waits on it, or the read fails (the app answers 400 and the connection closes)."""

from __future__ import annotations

import socket
import time
from typing import Any

from gunicorn.http.unreader import SocketUnreader

PACE_WINDOW, PACE_BYTES = 10.0, 16 * 1024  # a thread reading a body waits at most this long per 16 KiB


class PacedSocketUnreader(SocketUnreader):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's socket reader, but a client that keeps a thread waiting longer than PACE_WINDOW for
    each PACE_BYTES gets a TimeoutError (the app answers 400 and the connection closes). Only time spent
    waiting on the client counts: a thread busy elsewhere (writing to the bucket) blames nobody."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.restart()

    def restart(self) -> None:
        self.waited, self.received = 0.0, 0

    def chunk(self, size_hint: int | None = None) -> bytes:
        allowed = PACE_WINDOW - self.waited
        if allowed <= 0:
            raise TimeoutError("the client sent its request too slowly")
        prior = self.sock.gettimeout()  # gunicorn's own, while it drains a body nobody read
        self.sock.settimeout(allowed if prior is None else min(prior, allowed))
        started = time.monotonic()
        try:
            data: bytes = super().chunk(size_hint)
        finally:
            self.sock.settimeout(prior)
            self.waited += time.monotonic() - started
        self.received += len(data)
        if self.received >= PACE_BYTES:
            self.restart()
        return data


def pace(parser: Any, sock: socket.socket, arrived: bytes) -> None:
    """Give gunicorn's parser a paced reader of `sock` (reused across a connection's requests), primed
    with the bytes the poller gathered."""
    if not isinstance(parser.unreader, PacedSocketUnreader):
        parser.unreader = PacedSocketUnreader(sock)
    parser.unreader.restart()
    parser.unreader.unread(arrived)
