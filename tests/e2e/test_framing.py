"""Every request is framed by the worker's poller by one set of rules (RFC 9112), and what it cannot frame
is answered there, at once, with every thread busy: other transfer codings (501), a second
Transfer-Encoding or Content-Length, both, a Content-Length list, folded lines, bare LF, bad chunks
(400). Plus the socket limits: a cap per client address, and idle connections closed oldest first."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from scripts.harness import RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS

pytestmark = pytest.mark.e2e
AUTH = b"Authorization: Bearer " + TOKENS["developer"].encode() + b"\r\n"
PUT = b"PUT /ml/vision/-/data/framing/a HTTP/1.1\r\nHost: registry\r\n" + AUTH
POST = b"POST /api/v1/projects/ml%2Fvision/objects/exists HTTP/1.1\r\nHost: registry\r\n"


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    """One worker with two threads: two stalled uploads keep every thread busy."""
    server = start_registry(
        tmp_path_factory.mktemp("framing"), gitlab.url, serve_args=("--workers", "1", "--threads", "2")
    )
    yield server
    server.stop()


def connect(registry: RegistryServer, source: str = "127.0.0.1", timeout: float = 5) -> socket.socket:
    address = urlsplit(registry.url)
    return socket.create_connection(
        (address.hostname, address.port), timeout=timeout, source_address=(source, 0)
    )


def status_within(sock: socket.socket, seconds: float) -> int | None:
    """The status code of the answer that comes within `seconds`; None if none does."""
    sock.settimeout(seconds)
    try:
        answer = sock.recv(4096)
    except (TimeoutError, ConnectionResetError):
        return None
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


@contextlib.contextmanager
def threads_busy(registry: RegistryServer, threads: int = 2) -> Iterator[None]:
    """Every thread reading an authorised upload whose body stopped coming (a thread gives up on one
    after 10 s; closing the connection frees it at once)."""
    stalled = [connect(registry) for _ in range(threads)]
    for sock in stalled:
        sock.sendall(PUT.replace(b"/a ", b"/stalled ") + b"Content-Length: 5000000\r\n\r\n" + b"x" * 65536)
    time.sleep(0.5)
    try:
        yield
    finally:
        for sock in stalled:
            sock.close()


def test_with_every_thread_busy_a_request_waits(one_worker: RegistryServer) -> None:
    """What the other tests rely on: two stalled uploads do hold both threads."""
    with threads_busy(one_worker), connect(one_worker) as sock:
        sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: registry\r\n\r\n")
        assert status_within(sock, 1.0) is None
    assert requests.get(f"{one_worker.url}/-/health", timeout=5).status_code == 200


CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n"
RULES = {
    # RFC 9112 6.1: a transfer coding the server does not decode (never stored as if decoded)
    "gzip, chunked": (PUT + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nab", 501),
    "identity, chunked": (PUT + b"Transfer-Encoding: identity, chunked\r\n\r\n5\r\nab", 501),
    # RFC 9112 6.3: chunked not the final coding, so no length: 400 (a MUST)
    "chunked, gzip": (PUT + b"Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nab", 400),
    "identity": (PUT + b"Transfer-Encoding: identity\r\n\r\nab", 400),
    "chunked, chunked": (PUT + b"Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nab", 400),
    "two Transfer-Encoding lines": (
        PUT + b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        400,
    ),
    "two chunked lines": (PUT + b"Transfer-Encoding: chunked\r\n" + CHUNKED + b"5\r\nab", 400),
    "two Content-Length lines": (PUT + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nab", 400),
    "a Content-Length list": (PUT + b"Content-Length: 5, 5\r\n\r\nab", 400),
    "Content-Length and Transfer-Encoding": (PUT + b"Content-Length: 5\r\n" + CHUNKED + b"5\r\nab", 400),
    "a signed Content-Length": (PUT + b"Content-Length: +5\r\n\r\nab", 400),
    "chunked in HTTP/1.0": (PUT.replace(b"HTTP/1.1", b"HTTP/1.0") + CHUNKED + b"5\r\nab", 400),
    "a folded line": (PUT + b"X-Note: a\r\n b\r\nContent-Length: 5\r\n\r\nab", 400),
    "a folded Transfer-Encoding": (PUT + b"Transfer-Encoding: gzip,\r\n chunked\r\n\r\n5\r\nab", 400),
    "space before the colon": (PUT + b"Content-Length : 5\r\n\r\nab", 400),
    "bare LF in the head": (PUT + b"X-Note: a\nContent-Length: 5\r\n\r\nab", 400),
    "bare LF only": (b"GET /-/health HTTP/1.1\nHost: registry\n\n", 400),
    "a chunk size that is not hex": (PUT + CHUNKED + b"0x5\r\nabcde\r\n0\r\n\r\n", 400),
    "chunk data without CRLF": (PUT + CHUNKED + b"5\r\nabcdefgh", 400),
    "bare LF in the trailers": (PUT + CHUNKED + b"5\r\nabcde\r\n0\r\nX-T: 1\n", 400),
}


@pytest.mark.parametrize(("raw", "status"), RULES.values(), ids=RULES.keys())
def test_what_the_poller_cannot_frame_is_answered_there(
    one_worker: RegistryServer, raw: bytes, status: int
) -> None:
    with threads_busy(one_worker), connect(one_worker) as sock:
        sock.sendall(raw)
        assert status_within(sock, 1.5) == status


def test_a_chunked_body_is_stored_decoded_and_kept_alive(one_worker: RegistryServer) -> None:
    """What passes the rules is served as before: chunk extensions and trailers, then the next request."""
    with connect(one_worker) as sock:
        sock.sendall(PUT + CHUNKED + b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n")
        sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: registry\r\n\r\n")
        sock.settimeout(10)
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 2 or not answers.endswith(b"}\n"):
            more = sock.recv(4096)
            assert more, answers
            answers += more
    assert answers.startswith(b"HTTP/1.1 201") and b"HTTP/1.1 200 OK" in answers, answers
    stored = requests.get(
        f"{one_worker.url}/ml/vision/-/data/framing/a",
        headers={"Authorization": AUTH[15:-2].decode()},
        timeout=10,
    )
    assert stored.content == b"abcde"


@pytest.fixture(scope="module")
def few_connections(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    """One worker taking 300 connections at most (gunicorn's worker_connections, from the environment)."""
    server = start_registry(
        tmp_path_factory.mktemp("few-connections"),
        gitlab.url,
        serve_args=("--workers", "1"),
        GUNICORN_CMD_ARGS="--worker-connections 300",
    )
    yield server
    server.stop()


def test_at_the_connection_limit_the_longest_idle_make_room(few_connections: RegistryServer) -> None:
    idle = [connect(few_connections, f"127.0.0.{21 + i % 2}") for i in range(400)]
    try:
        with connect(few_connections) as sock:
            sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: registry\r\n\r\n")
            assert status_within(sock, 2) == 200
        closed = [i for i, sock in enumerate(idle) if _closed(sock)]
        assert len(closed) >= 100 and closed[:100] == list(range(100)), closed[:120]
    finally:
        for sock in idle:
            sock.close()


def _closed(sock: socket.socket, wait: float = 0.001) -> bool:
    """Whether the server closed `sock` (within `wait` seconds)."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_an_address_gets_256_connections_a_worker(few_connections: RegistryServer) -> None:
    """Past its cap an address's idle connections make room for its new ones, and when none is idle a
    new one is answered 429 at once. Other addresses are served meanwhile."""
    time.sleep(0.5)  # the connections of the test before are closed by now
    idle = [connect(few_connections, "127.0.0.31") for _ in range(260)]
    busy: list[socket.socket] = []
    try:
        assert all(_closed(sock, wait=2) for sock in idle[:4])  # the oldest four made room
        assert not any(_closed(sock) for sock in idle[4:])
        for sock in idle:
            sock.close()
        busy = [connect(few_connections, "127.0.0.32") for _ in range(256)]
        for sock in busy:
            sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: regis")  # a head begun: not idle
        time.sleep(0.5)
        with connect(few_connections, "127.0.0.32") as sock:
            assert status_within(sock, 1) == 429
        with connect(few_connections, "127.0.0.33") as sock:
            sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: registry\r\n\r\n")
            assert status_within(sock, 2) == 200
    finally:
        for sock in idle + busy:
            sock.close()


def test_a_trusted_proxy_has_no_connection_cap(few_connections: RegistryServer) -> None:
    """A peer in gunicorn's forwarded_allow_ips (127.0.0.1 by default) carries many clients: an ingress."""
    time.sleep(0.5)  # the connections of the test before are closed by now
    busy = [connect(few_connections) for _ in range(270)]
    try:
        for sock in busy:
            sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: regis")
        time.sleep(0.5)
        with connect(few_connections) as sock:
            sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: registry\r\n\r\n")
            assert status_within(sock, 2) == 200
    finally:
        for sock in busy:
            sock.close()
