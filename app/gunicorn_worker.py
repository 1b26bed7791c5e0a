"""The gunicorn worker `data-registry serve` runs: gthread, except that a request's headers (and a small
body) arrive in the poller and not in a thread, and a thread waits on a slow body only so long, so slow
or stalled clients cost a socket each and never the threads that serve everyone else.

The timing rules are Apache's mod_reqtimeout (`header=20-40,MinRate=500`) for what the poller holds, and
for a body a thread reads: at least `PACE_BYTES` per `PACE_WINDOW` seconds of waiting on the client."""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from typing import Any

from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

HEADER_LIMIT = 64 * 1024  # the whole header block; gunicorn's own per-line limits apply after
BODY_BUFFER = 1024 * 1024  # a body up to this (JSON, hooks, small objects) arrives before a thread sees it
GATHER_BUDGET = 32 * 1024 * 1024  # per worker: beyond it, bodies go to threads as they come
RECV_SIZE = 64 * 1024  # per read in the poller: below malloc's mmap threshold, so no syscalls to allocate
GRACE, MIN_RATE, MAX_WAIT = 20.0, 500, 40.0  # seconds, bytes/s after the grace, seconds in all
PACE_WINDOW, PACE_BYTES = 10.0, 16 * 1024  # a thread reading a body waits at most this long per 16 KiB
LINGER, LINGER_BYTES = 2.0, 64 * 1024  # a closing connection's unread bytes are drained this long
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REQUEST_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\r\n")  # byte values
NOT_HTTP = (
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 32\r\n\r\nThis port speaks HTTP (not TLS)."
)
TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 38\r\n\r\nRequest not received in time: too slow"
)
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 34\r\n\r\nRequest headers larger than 64 KiB"
)


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


def _chunked_end(body: bytes | bytearray) -> int | None:
    """Where a chunked body ends (after its trailers); None while more must come. Where it is malformed,
    it "ends" there: a thread takes it and gunicorn's parser refuses it."""
    at = 0
    while True:
        eol = body.find(b"\r\n", at)
        if eol < 0:
            return None if len(body) - at <= 1024 else at
        try:
            size = int(bytes(body[at:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            return at
        if size < 0:
            return at
        if size == 0:  # the last chunk; trailers follow, ended by an empty line
            if body[eol + 2 : eol + 4] == b"\r\n":
                return eol + 4
            end = body.find(b"\r\n\r\n", eol + 2)
            return None if end < 0 else end + 4
        at = eol + 2 + size + 2
        if at > len(body):
            return None


@dataclass(frozen=True)
class Framing:
    """What the poller reads of a header block: enough to know when the request has fully arrived."""

    length: int | None  # Content-Length
    chunked: bool
    expects_continue: bool

    @classmethod
    def of(cls, head: bytes) -> Framing | None:
        """None for anything unusual (two lengths, an unreadable one): a thread takes it at once and
        gunicorn's parser, which decides what every byte means, answers."""
        length, chunked, expects = None, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"transfer-encoding":
                if chunked or value != b"chunked":
                    return None
                chunked = True
            elif name == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
            elif name == b"expect":
                expects = value == b"100-continue"
        if chunked and length is not None:
            return None
        return cls(length, chunked, expects)

    def gathers(self) -> bool:
        """Whether the poller waits for the body too (small enough), rather than a thread."""
        return self.chunked or (self.length or 0) <= BODY_BUFFER


class GuardedConn(TConn):  # type: ignore[misc]
    """gthread's connection, plus what the poller gathered for the thread that will serve it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.arrived: bytes | None = None  # the request's bytes so far, for the parser
        self.continued = False  # the poller answered `Expect: 100-continue`
        self.drained = 0  # bytes read and dropped while closing


class Arrival:
    """A request on its way in: the bytes so far, and until when the client may take to send them."""

    def __init__(self, conn: GuardedConn, first_byte_by: float, data: bytes = b"") -> None:
        self.conn = conn
        self.data = bytearray(data)
        self.first_byte_by = first_byte_by
        self.started: float | None = time.monotonic() if data else None
        self.continued = False  # whether the poller sent `100 Continue`

    def deadline(self) -> float:
        if self.started is None:
            return self.first_byte_by
        return self.started + min(GRACE + len(self.data) / MIN_RATE, MAX_WAIT)

    def add(self, data: bytes) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.data += data

    def state(self, gather: bool = True) -> str:
        """ "complete" (hand it to a thread), "waiting", "continue" (headers are here and the client
        waits for `100 Continue` before its body) or "too large". Without `gather`, the headers suffice."""
        if self.data and self.data[0] not in _REQUEST_START:  # not HTTP (a TLS hello, say): 400 now
            return "not http"
        end = self.data.find(b"\r\n\r\n")
        if end < 0 or end > HEADER_LIMIT:
            return "too large" if len(self.data) > HEADER_LIMIT else "waiting"
        framing = Framing.of(bytes(self.data[:end]))
        if framing is None or not gather or not framing.gathers():
            return "complete"
        body = self.data[end + 4 :]
        if framing.chunked:
            arrived = _chunked_end(body) is not None or len(body) > BODY_BUFFER
        else:
            arrived = len(body) >= (framing.length or 0)
        if arrived:
            return "complete"
        return "continue" if framing.expects_continue and not self.continued else "waiting"


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with requests gathered in the poller, paced body reads and closes that never block it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: dict[GuardedConn, Arrival] = {}
        self.closing: dict[socket.socket, float] = {}
        self.gathered = 0  # bytes the poller holds for requests not yet handed to a thread
        self.next_scan = 0.0

    def _guarded(self) -> bool:
        # TLS and HTTP/2 prior knowledge read from the socket before the parser exists: gthread's way
        return not self.cfg.is_ssl and self.cfg.http2_cleartext in ("off", "upgrade")

    # --- requests arriving, in the poller -------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        if not self._guarded():
            super().accept(listener)
            return
        try:
            client, address = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = GuardedConn(self.cfg, client, address, listener.getsockname())  # non-blocking
        self._await_request(conn, time.monotonic() + GRACE)

    def _await_request(self, conn: GuardedConn, first_byte_by: float, data: bytes = b"") -> None:
        conn.sock.setblocking(False)
        arrival = Arrival(conn, first_byte_by, data)
        self.arrivals[conn] = arrival
        self.gathered += len(data)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, arrival))
        if data:
            self._advance(arrival)

    def _on_readable(self, arrival: Arrival, _sock: socket.socket) -> None:
        try:
            data = arrival.conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._forget(arrival)
            self._close(arrival.conn)
            return
        arrival.add(data)
        self.gathered += len(data)
        self._advance(arrival)

    def _advance(self, arrival: Arrival) -> None:
        """Hand a request that has arrived to a thread, refuse one that cannot, or go on waiting. Past
        GATHER_BUDGET bytes held by the poller, headers alone are enough (a thread reads the body)."""
        conn = arrival.conn
        state = arrival.state(gather=self.gathered <= GATHER_BUDGET)
        if state == "continue":
            try:
                conn.sock.send(CONTINUE)
                arrival.continued = True
            except OSError:
                pass
            return
        if state == "waiting":
            return
        self._forget(arrival)
        if state in ("too large", "not http"):
            self._refuse(conn, TOO_LARGE if state == "too large" else NOT_HTTP)
            return
        conn.arrived = bytes(arrival.data)
        conn.continued = arrival.continued
        conn.data_ready = True  # no waiting for a first byte in the thread
        self.enqueue_req(conn)

    def _forget(self, arrival: Arrival) -> None:
        if self.arrivals.pop(arrival.conn, None) is not None:
            self.gathered -= len(arrival.data)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(arrival.conn.sock)

    # --- in a thread ------------------------------------------------------------------------------

    def handle(self, conn: GuardedConn) -> Any:
        arrived = getattr(conn, "arrived", None)  # None: gthread's own path (TLS, HTTP/2)
        if arrived is not None:
            conn.arrived = None
            conn.sock.setblocking(True)
            conn.init()
            if not isinstance(conn.parser.unreader, PacedSocketUnreader):
                conn.parser.unreader = PacedSocketUnreader(conn.sock)
            conn.parser.unreader.restart()
            conn.parser.unreader.unread(arrived)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: GuardedConn) -> Any:
        if getattr(conn, "continued", False):  # the poller said `100 Continue` already: not twice
            req._expected_100_continue = False
            conn.continued = False
        return super().handle_request(req, conn)

    def _keepalive_after(self, conn: GuardedConn, keepalive: bool) -> bool:
        """Keep the connection only when the body the app left unread is already here: waiting on the
        client to send bytes nobody wants would hold this thread."""
        if not keepalive:
            return False
        return bool(conn.parser.finish_body(deadline=time.monotonic() + 0.05))

    # --- back in the poller -------------------------------------------------------------------------

    def finish_request(self, conn: GuardedConn, fs: futures.Future[Any]) -> None:
        if not self._guarded():
            super().finish_request(conn, fs)
            return
        try:
            keepalive = not fs.cancelled() and fs.result()
        except Exception:
            keepalive = False
        if not keepalive:
            self._linger(conn)
            return
        idle_until = time.monotonic() + (self.cfg.keepalive if self.alive else STOP_KEEPALIVE_LINGER)
        self._await_request(conn, idle_until, conn.parser.unreader.take_buffered())

    def _refuse(self, conn: GuardedConn, answer: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(answer)
        self._linger(conn)

    def _linger(self, conn: GuardedConn) -> None:
        """Close as RFC 9112 9.6 asks (FIN, then read what the client still sends so that no RST cuts our
        answer short) without blocking the poller: the rest of the drain happens on readability."""
        sock = conn.sock
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        self.closing[sock] = time.monotonic() + LINGER
        self.poller.register(sock, selectors.EVENT_READ, partial(self._drain, conn))

    def _drain(self, conn: GuardedConn, sock: socket.socket) -> None:
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_BYTES:
            self._stop_lingering(sock)
            self._close(conn)

    def _stop_lingering(self, sock: socket.socket) -> None:
        self.closing.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(sock)

    def _close(self, conn: GuardedConn) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Close requests past their deadline (all idle ones when stopping) and finished lingers."""
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_scan and self.alive:  # called after every poll: scan four times a second
            return
        self.next_scan = now + 0.25
        for arrival in [
            a for a in self.arrivals.values() if a.deadline() <= now or (not self.alive and not a.data)
        ]:
            self._forget(arrival)
            if arrival.data:  # a request begun and not finished: say why before closing
                self._refuse(arrival.conn, TIMED_OUT)
            else:
                self._close(arrival.conn)
        for sock in [s for s, until in self.closing.items() if until <= now]:
            self._stop_lingering(sock)
            self.nr_conns -= 1
            sock.close()
