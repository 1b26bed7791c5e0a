"""A request on its way in through the worker's poller: its bytes so far, how they are framed
(app.request_framing), whether a thread may take it yet, and until when the client may take to send it
(Apache's mod_reqtimeout `header=20-40,MinRate=500`)."""

from __future__ import annotations

import time
from typing import Generic, Protocol, TypeVar

from app.poller_limits import Kind
from app.request_framing import ChunkedBody, FramingError, Head, read_head

BODY_BUFFER = 1024 * 1024  # a body up to this (JSON, hooks, small objects) arrives before a thread sees it
GRACE, MIN_RATE, MAX_WAIT = 20.0, 500, 40.0  # seconds, bytes/s after the grace, seconds in all
_REQUEST_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\r\n")  # byte values


class Client(Protocol):
    key: str  # the client address the limits count it against


C = TypeVar("C", bound=Client)


class Arrival(Generic[C]):
    """A request on its way in: the bytes so far, how they are framed, until when the client may take to
    send them, and what they count against (client address and kind)."""

    def __init__(self, conn: C, first_byte_by: float, data: bytes = b"") -> None:
        self.conn = conn
        self.data = bytearray(data)
        self.first_byte_by = first_byte_by
        self.started: float | None = time.monotonic() if data else None
        self.continued = False  # whether the poller sent `100 Continue`
        self.head: Head | None = None
        self.chunks: ChunkedBody | None = None
        self.key, self.held = conn.key, 0  # as counted in the worker's Holdings, with kind
        self.kind: Kind = "head"
        self.paused = False  # not read from while its address or kind is past its share

    def deadline(self) -> float:
        if self.started is None:
            return self.first_byte_by
        return self.started + min(GRACE + len(self.data) / MIN_RATE, MAX_WAIT)

    def add(self, data: bytes) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.data += data

    def complete(self) -> bool:
        """Whether a thread may take the request: its head, and its body when that is at most BODY_BUFFER
        (a longer one only from its head, or from its first BODY_BUFFER bytes when chunked, so that the
        app can answer from them). FramingError for anything framed any other way."""
        if self.data and self.data[0] not in _REQUEST_START:  # not HTTP (a TLS hello, say)
            raise FramingError(400, "This port speaks HTTP (not TLS).")
        if self.head is None:
            self.head = read_head(self.data)
            if self.head is None:
                return False
            self.chunks = ChunkedBody(self.head.size) if self.head.chunked else None
        if self.chunks is not None:
            return self.chunks.end(self.data) is not None or self.chunks.received() > BODY_BUFFER
        return self.head.length > BODY_BUFFER or len(self.data) - self.head.size >= self.head.length

    def wants_continue(self) -> bool:
        return self.head is not None and self.head.expects_continue and not self.continued
