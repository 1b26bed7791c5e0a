"""Slow anonymous clients, as an attacker would run them against the registry: half-sent headers and
bodies trickled a byte at a time, framings the server refuses, 1 MiB bodies that stall, idle sockets,
re-opened whenever the server closes one, plus a health probe that measures how the server answers
meanwhile. Shared by the test suite and the benchmarks in `scripts/bench/`."""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil

PROJECT = b"ml%2Fvision"  # the simulated GitLab's project, URL-encoded as the JSON API takes it

# (what it is, the bytes sent at once, the length announced for what then comes a byte at a time)
OPENINGS: list[tuple[str, bytes]] = [
    ("half-sent headers", b"GET /ml/vision/-/data/x HTTP/1.1\r\nHost: registry\r\nX-Slow: "),
    (
        "trickled JSON body",
        b"POST /api/v1/projects/%s/objects/exists HTTP/1.1\r\nHost: registry\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n" % PROJECT,
    ),
    (
        "trickled upload",
        b"PUT /ml/vision/-/data/slow/upload HTTP/1.1\r\nHost: registry\r\nContent-Length: 1000000\r\n\r\n",
    ),
    (
        "trickled chunked upload",
        b"PUT /ml/vision/-/data/slow/chunked HTTP/1.1\r\nHost: registry\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"186a0\r\n",
    ),
    ("trickled hook", b"POST /-/hooks/gitlab HTTP/1.1\r\nHost: registry\r\nContent-Length: 5000\r\n\r\n"),
]


# Framings the registry refuses: a coding it does not decode, and two Transfer-Encoding lines (what a
# proxy and a server may read differently), each before a JSON body trickled a byte at a time (the API
# reads a JSON body before it looks at credentials)
JSON_POST = (
    b"POST /api/v1/projects/%s/objects/exists HTTP/1.1\r\nHost: registry\r\n"
    b"Content-Type: application/json\r\n" % PROJECT
)
UNFRAMED: list[tuple[str, bytes]] = [
    ("gzip, chunked", JSON_POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n186a0\r\n"),
    (
        "identity, then chunked",
        JSON_POST + b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n",
    ),
]

MIB = 1024 * 1024
# Anonymous 1 MiB JSON bodies sent but for their last byte, then stalled: sized, and chunked
STALLED: list[tuple[str, bytes]] = [
    ("stalled JSON body", JSON_POST + b"Content-Length: %d\r\n\r\n%s" % (MIB, b" " * (MIB - 1))),
    (
        "stalled chunked JSON body",
        JSON_POST + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s" % (MIB, b" " * (MIB - 1)),
    ),
]


def loopback(count: int, block: int) -> list[str]:
    """`count` addresses 127.<block>.x.y for clients to connect from: as many attackers (Linux routes all
    of 127.0.0.0/8 to the loopback interface)."""
    return [f"127.{block}.{1 + i // 250}.{1 + i % 250}" for i in range(count)]


@dataclass
class SlowClients:
    """`count` connections, each sending one of `openings` in turn and then, with `trickle`, one more byte
    every `interval` seconds (without, nothing more: stalled, or idle when the opening is empty). Each
    comes from one of the loopback `sources` in turn and is re-opened whenever the server closes it."""

    url: str
    count: int = 256
    interval: float = 2.0
    openings: Sequence[bytes] = tuple(opening for _, opening in OPENINGS)
    sources: Sequence[str] = ("127.0.0.1",)
    trickle: bool = True
    reopened: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # first status word of what the server sent
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _unsent: dict[int, bytes] = field(default_factory=dict)  # what the server did not take yet

    def __enter__(self) -> SlowClients:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _open(self, index: int) -> socket.socket | None:
        address = urlsplit(self.url)
        try:
            sock = socket.create_connection(
                (address.hostname, address.port),
                timeout=5,
                source_address=(self.sources[index % len(self.sources)], 0),
            )
            sock.setblocking(False)
        except OSError:
            return None
        self._unsent[index] = self.openings[index % len(self.openings)]
        with contextlib.suppress(OSError):
            self._send(index, sock)
        return sock

    def _send(self, index: int, sock: socket.socket) -> None:
        unsent = self._unsent.get(index, b"")
        if not unsent:
            if self.trickle:
                sock.send(b"a")
            return
        self._unsent[index] = unsent[sock.send(unsent) :]

    def _run(self) -> None:
        socks: list[socket.socket | None] = [self._open(i) for i in range(self.count)]
        while not self._stop.wait(self.interval):
            for i, sock in enumerate(socks):
                if sock is None or not self._alive(sock):
                    if sock is not None:
                        sock.close()
                    self.reopened += 1
                    socks[i] = sock = self._open(i)
                    continue
                try:
                    self._send(i, sock)
                except BlockingIOError:
                    pass
                except OSError:
                    sock.close()
                    socks[i] = None
        for sock in socks:
            if sock is not None:
                sock.close()

    def _alive(self, sock: socket.socket) -> bool:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if data:
            status = data.split(b" ", 2)[1].decode(errors="replace") if data.startswith(b"HTTP/") else "?"
            self.answers[status] = self.answers.get(status, 0) + 1
        return False  # anything the server sends to a request it never got in full ends the exchange


def huge_anonymous_json(url: str, size: int = 400 * 1024 * 1024) -> tuple[str, int]:
    """POST a `size`-byte JSON body anonymously as fast as the server takes it: (the server's status
    line, bytes it took before answering or closing)."""
    address = urlsplit(url)
    sent = 0
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/v1/projects/%s/objects/exists HTTP/1.1\r\nHost: registry\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (PROJECT, size)
        )
        block = b"[" + b"0," * (1024 * 1024 // 2 - 1) + b"0"
        sock.settimeout(0)
        answer = b""
        while sent < size:
            try:
                answer += sock.recv(4096)
                if answer:
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            try:
                sock.settimeout(5)
                sent += sock.send(block[: size - sent])
                sock.settimeout(0)
            except OSError:
                break
        sock.settimeout(10)
        try:
            while b"\r\n" not in answer:
                more = sock.recv(4096)
                if not more:
                    break
                answer += more
        except OSError:
            pass
    return answer.split(b"\r\n", 1)[0].decode(errors="replace"), sent


@dataclass
class HealthProbe:
    """GET /-/health on a fresh connection, one after another, recording each latency (a timeout counts
    as its full `timeout`)."""

    url: str
    timeout: float = 5.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    def run_for(self, seconds: float) -> None:
        import requests

        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                ok = requests.get(f"{self.url}/-/health", timeout=self.timeout).status_code == 200
            except requests.RequestException:
                ok = False
            self.latencies.append(time.monotonic() - started)
            self.failures += not ok
            time.sleep(0.05)

    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] if len(self.latencies) > 1 else float("inf")


def workers_rss(master_pid: int) -> int:
    """Bytes resident in the server's worker processes (the master's children)."""
    return sum(child.memory_info().rss for child in psutil.Process(master_pid).children())
