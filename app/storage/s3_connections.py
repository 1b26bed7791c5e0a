"""Kept-alive HTTP connections to the bucket for the small-object path (app.storage.s3_lean): a pool of
http.client connections per worker process with botocore's timeouts and certificate settings, a request
sent once more on a fresh connection when a kept-alive one turns out closed, and the two kinds of answer
(ours, and that of botocore's HTTP session, used through a proxy) behind one interface."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import weakref
from typing import Any, Protocol


class ConnectionFailed(Exception):
    """The request could not be sent or its answer's head not read (refused, reset, timed out)."""


# a kept-alive connection the bucket closed in the meantime fails this way before any answer: the
# request never reached it, so it is sent again on a new connection at once
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Answer(Protocol):
    """A bucket's answer with its body unread, whichever way it came."""

    status: int

    def header(self, name: str) -> str | None: ...
    def read(self, size: int) -> bytes: ...
    def truncated(self) -> bool: ...
    def done(self) -> None: ...  # the body was read whole: the connection may serve another request
    def abandon(self) -> None: ...  # the body was not read whole: the connection is closed


class OwnAnswer:
    """An answer read off one of our connections; the connection goes back to the pool when done."""

    def __init__(self, pool: Connections, connection: http.client.HTTPConnection) -> None:
        self._pool, self._connection = pool, connection
        self._response = connection.getresponse()
        self.status = self._response.status

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    def read(self, size: int) -> bytes:
        return self._response.read(size)

    def truncated(self) -> bool:
        """The body ended before the Content-Length it announced (http.client says nothing of it)."""
        return bool(self._response.length)

    def done(self) -> None:
        if self._response.will_close or not self._response.isclosed():
            self._connection.close()
        else:
            self._pool.give_back(self._connection)

    def abandon(self) -> None:
        self._connection.close()


class SessionAnswer:
    """An answer through botocore's HTTP session (its urllib3 pool): the proxy path."""

    def __init__(self, raw: Any, status: int) -> None:
        self._raw, self.status = raw, status

    def header(self, name: str) -> str | None:
        value: str | None = self._raw.headers.get(name)
        return value

    def read(self, size: int) -> bytes:
        data: bytes = self._raw.read(size, decode_content=False)
        return data

    def truncated(self) -> bool:
        return bool(self._raw.length_remaining)

    def done(self) -> None:
        self._raw.release_conn()

    def abandon(self) -> None:
        self._raw.close()


class Connections:
    """Connections to one host; a thread takes one for a request and gives it back after the answer."""

    def __init__(
        self,
        scheme: str,
        host: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        certificates: str | bool | None,
        idle: int,
    ) -> None:
        self._scheme, self._host = scheme, host
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._context = _tls_context(certificates) if scheme == "https" else None
        self._idle_limit = idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.opened = 0  # connections made so far (kept alive, they are few)
        weakref.finalize(self, _close_all, self._idle)  # a backend dropped closes its idle sockets

    def _take(self) -> http.client.HTTPConnection | None:
        with self._lock:
            if self._pid != os.getpid():  # a forked worker never shares its parent's sockets
                self._idle.clear()
                self._pid = os.getpid()
            return self._idle.pop() if self._idle else None

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._idle_limit and self._pid == os.getpid():
                self._idle.append(connection)
                return
        connection.close()

    def _open(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._context is not None:
            connection = http.client.HTTPSConnection(
                self._host, timeout=self._connect_timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self._host, timeout=self._connect_timeout)
        connection.connect()
        self.opened += 1
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes | bytearray | None
    ) -> OwnAnswer:
        """Send the request and read the answer's head; BucketUnreachable when that fails."""
        connection = self._take()
        while True:
            reused = connection is not None and connection.sock is not None
            try:
                if not reused:
                    connection = self._open()
                assert connection is not None
                connection.request(method, path, body=body, headers=headers)
                return OwnAnswer(self, connection)
            except (OSError, http.client.HTTPException) as error:
                if connection is not None:
                    connection.close()
                if reused and isinstance(error, _STALE):
                    connection = None
                    continue
                raise ConnectionFailed(f"{type(error).__name__}: {error}") from error


def _close_all(connections: list[http.client.HTTPConnection]) -> None:
    for connection in connections:
        connection.close()


def _tls_context(where: str | bool | None) -> ssl.SSLContext:
    """Certificates checked against the bundle (a file or a directory) botocore uses; False: not checked."""
    if where is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(where, str) and os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where if isinstance(where, str) else None)
