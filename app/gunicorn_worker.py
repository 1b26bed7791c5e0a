"""The gunicorn worker `data-registry serve` runs: gthread, except that the poller frames every request
(app.request_framing) and gathers its head and a small body before a thread sees it, answers whatever it
cannot frame itself, and bounds what each client may hold (app.poller_limits), so slow, stalled or idle
clients cost a socket each and never the threads that serve everyone else.

The timing rules are Apache's mod_reqtimeout (`header=20-40,MinRate=500`) for what the poller holds, and
for a body a thread reads: app.paced_reads."""

from __future__ import annotations

import contextlib
import errno
import itertools
import selectors
import socket
import time
from concurrent import futures
from functools import partial
from http import HTTPStatus
from typing import Any

from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from app.paced_reads import pace
from app.poller_limits import FD_RESERVE, Holdings, Kind, Proxies, Sockets, address_key, descriptors_short_of
from app.request_arrival import GRACE, Arrival
from app.request_framing import FramingError, Head

RECV_SIZE = 64 * 1024  # per read in the poller: below malloc's mmap threshold, so no syscalls to allocate
LINGER, LINGER_BYTES = 2.0, 64 * 1024  # a closing connection's unread bytes are drained this long
RESUME_BATCH = 16  # paused requests looked at whenever held bytes are released
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def answer(status: int, reason: str) -> bytes:
    """A complete response the poller sends itself, closing the connection after it."""
    body, phrase = reason.encode(), HTTPStatus(status).phrase.encode()
    head = b"HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain\r\n" % (status, phrase)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


TIMED_OUT = answer(408, "Request not received in time: too slow")
TOO_MANY = answer(429, "Too many connections from your address")
UNAVAILABLE = answer(503, "The server is restarting: send the request again")


class GuardedConn(TConn):  # type: ignore[misc]
    """gthread's connection, plus what the poller gathered for the thread that will serve it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.arrived: bytes | None = None  # the request's bytes so far, for the parser
        self.continued = False  # the poller answered `Expect: 100-continue`
        self.drained = 0  # bytes read and dropped while closing
        self.key = ""  # the client address the limits count it against
        self.proxy = False  # a peer in forwarded_allow_ips: no connection cap, X-Forwarded-For is the client


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread with requests framed and gathered in the poller, per-client limits, idle connections
    evicted oldest first at the connection limit, paced body reads and closes that never block it."""

    arrival_class: type[Arrival[GuardedConn]] = Arrival

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_connections: int = self.cfg.worker_connections
        self.arrivals: dict[GuardedConn, Arrival[GuardedConn]] = {}
        self.paused: dict[GuardedConn, Arrival[GuardedConn]] = {}  # in the order they were paused
        self.closing: dict[GuardedConn, float] = {}
        self.holdings = Holdings()
        self.clients: Sockets[GuardedConn] = Sockets()  # not `sockets`: gthread's listeners
        self.proxies = Proxies([])
        self.next_scan = 0.0

    def _guarded(self) -> bool:
        # TLS and HTTP/2 prior knowledge read from the socket before the parser exists: gthread's way
        return not self.cfg.is_ssl and self.cfg.http2_cleartext in ("off", "upgrade")

    def init_process(self) -> None:
        self._fit_connections_to_descriptors()
        self.proxies = Proxies(self.cfg.forwarded_allow_ips)
        super().init_process()

    def _fit_connections_to_descriptors(self) -> None:
        """Raise the soft descriptor limit to the hard one if the connections need it; with too low a
        hard limit, take fewer connections rather than fail to accept (EMFILE) with the poller busy."""
        soft = descriptors_short_of(self.worker_connections + FD_RESERVE)
        if soft is not None:
            self.worker_connections = max(soft - FD_RESERVE, self.cfg.threads + 1)
            self.max_keepalived = self.worker_connections - self.cfg.threads
            self.log.warning(
                "worker_connections %d lowered to %d: the file-descriptor limit is %d (raise it)",
                self.cfg.worker_connections,
                self.worker_connections,
                soft,
            )

    # --- connections and requests arriving, in the poller ---------------------------------------

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
        host = address[0] if isinstance(address, tuple) else ""
        conn.proxy = not host or host in self.proxies  # a unix socket's peer is local
        conn.key = address_key(host)
        if not conn.proxy and self.clients.at_cap(conn.key):
            oldest = self.clients.oldest_idle(conn.key)
            if oldest is None:  # all of its connections are busy: this one is answered and closed
                self.clients.opened(conn.key)
                self._turn_away(conn)
                return
            self._evict(oldest)
        self.clients.opened(conn.key)
        self._await_request(conn, time.monotonic() + GRACE)

    def _await_request(self, conn: GuardedConn, first_byte_by: float, data: bytes = b"") -> None:
        conn.sock.setblocking(False)
        arrival = self.arrival_class(conn, first_byte_by, data)
        self.arrivals[conn] = arrival
        self._hold(arrival, len(data))
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, arrival))
        if data:
            self._advance(arrival)
            return
        self.clients.became_idle(conn, conn.key)
        while self.nr_conns >= self.worker_connections:  # at the limit: the longest idle makes room
            oldest = self.clients.oldest_idle()
            if oldest is None:
                break
            self._evict(oldest)

    def _on_readable(self, arrival: Arrival[GuardedConn], _sock: socket.socket) -> None:
        room = self.holdings.room(arrival.key, arrival.kind)
        if room <= 0:
            self._pause(arrival)
            return
        try:
            data = arrival.conn.sock.recv(min(RECV_SIZE, room))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._forget(arrival)
            self._close(arrival.conn)
            return
        if arrival.started is None:
            self.clients.busy(arrival.conn)
        arrival.add(data)
        self._hold(arrival, len(data))
        self._advance(arrival)

    def _advance(self, arrival: Arrival[GuardedConn]) -> None:
        """Hand a request that has arrived to a thread, refuse one the poller cannot frame, or go on
        gathering it: reading while its address and kind have room in their shares, else paused."""
        conn = arrival.conn
        try:
            complete = arrival.complete()
        except FramingError as e:
            self._forget(arrival)
            self._refuse(conn, answer(e.status, e.reason))
            return
        if complete:
            self._forget(arrival)
            conn.arrived = bytes(arrival.data)
            conn.continued = arrival.continued
            conn.data_ready = True  # no waiting for a first byte in the thread
            self.enqueue_req(conn)
            return
        if arrival.head is not None and arrival.kind == "head":
            self._count_as_sender(arrival, arrival.head)
        if self.holdings.room(arrival.key, arrival.kind) <= 0:
            self._pause(arrival)
        elif arrival.wants_continue():
            try:
                conn.sock.send(CONTINUE)
                arrival.continued = True
            except OSError:
                pass

    def _count_as_sender(self, arrival: Arrival[GuardedConn], head: Head) -> None:
        """With its head in, a request counts against its sender (behind a trusted proxy, the address
        the proxy reports) as anonymous or as carrying a credential."""
        kind: Kind = "credentialed" if head.credentialed else "anonymous"
        key = address_key(head.forwarded_for) if arrival.conn.proxy and head.forwarded_for else arrival.key
        self.holdings.remove(arrival.key, arrival.kind, arrival.held)
        arrival.key, arrival.kind = key, kind
        self.holdings.add(key, kind, arrival.held)

    def _hold(self, arrival: Arrival[GuardedConn], size: int) -> None:
        arrival.held += size
        self.holdings.add(arrival.key, arrival.kind, size)

    def _pause(self, arrival: Arrival[GuardedConn]) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(arrival.conn.sock)
        arrival.paused = True
        self.paused[arrival.conn] = arrival

    def _resume(self, limit: int | None) -> None:
        """Read again from paused requests (oldest first) whose address and kind are back within their
        shares; at most `limit` of them looked at."""
        for arrival in list(itertools.islice(self.paused.values(), limit)):
            if self.holdings.room(arrival.key, arrival.kind) > 0:
                del self.paused[arrival.conn]
                arrival.paused = False
                self.poller.register(
                    arrival.conn.sock, selectors.EVENT_READ, partial(self._on_readable, arrival)
                )
                if arrival.wants_continue():
                    with contextlib.suppress(OSError):
                        arrival.conn.sock.send(CONTINUE)
                        arrival.continued = True

    def _forget(self, arrival: Arrival[GuardedConn]) -> None:
        conn = arrival.conn
        if self.arrivals.pop(conn, None) is None:
            return
        self.holdings.remove(arrival.key, arrival.kind, arrival.held)
        self.clients.busy(conn)
        if self.paused.pop(conn, None) is None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
        if arrival.held and self.paused:
            self._resume(RESUME_BATCH)

    def _evict(self, conn: GuardedConn) -> None:
        """Close an idle connection (no request begun) to let another one in."""
        self._forget(self.arrivals[conn])
        self._close(conn)

    def _turn_away(self, conn: GuardedConn) -> None:
        """Answer a connection over its address's cap at once, without keeping its socket to linger."""
        with contextlib.suppress(OSError):
            conn.sock.recv(RECV_SIZE)  # what it sent already, so that closing sends no reset
        with contextlib.suppress(OSError):
            conn.sock.send(TOO_MANY)
        self._close(conn)

    # --- in a thread ------------------------------------------------------------------------------

    def handle(self, conn: GuardedConn) -> Any:
        arrived = getattr(conn, "arrived", None)  # None: gthread's own path (TLS, HTTP/2)
        if arrived is not None:
            conn.arrived = None
            conn.sock.setblocking(True)
            conn.init()
            pace(conn.parser, conn.sock, arrived)
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

    def _refuse(self, conn: GuardedConn, response: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(response)
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
        self.closing[conn] = time.monotonic() + LINGER
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
            self._stop_lingering(conn)
            self._close(conn)

    def _stop_lingering(self, conn: GuardedConn) -> None:
        self.closing.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _close(self, conn: GuardedConn) -> None:
        self.nr_conns -= 1
        self.clients.closed(conn, conn.key)
        conn.close()

    def murder_pending(self) -> None:
        """Close requests past their deadline (when stopping, idle and paused ones too) and finished
        lingers; read again from paused requests that fit now."""
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_scan and self.alive:  # called after every poll: scan four times a second
            return
        self.next_scan = now + 0.25
        stopping = not self.alive
        for arrival in [
            a
            for a in self.arrivals.values()
            if a.deadline() <= now or (stopping and (a.paused or not a.data))
        ]:
            self._forget(arrival)
            if not arrival.data:
                self._close(arrival.conn)
            else:  # a request begun and not finished: say why before closing
                self._refuse(arrival.conn, UNAVAILABLE if arrival.paused and stopping else TIMED_OUT)
        for conn in [c for c, until in self.closing.items() if until <= now]:
            self._stop_lingering(conn)
            self._close(conn)
        if self.paused:
            self._resume(None)
