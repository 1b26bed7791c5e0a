"""The benchmark's delay proxy works: bytes arrive whole and in order, every round trip is at least twice
the delay slower than direct, and a hang-up reaches the other side (a functional check, not a timing of
the product)."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from scripts.bench.delay_proxy import ProxyThread

DELAY = 0.010


class _Echo(socketserver.BaseRequestHandler):
    closed = threading.Event()

    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)
        _Echo.closed.set()  # the client's hang-up came through


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    _Echo.closed.clear()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _round_trips(port: int, count: int = 8) -> list[float]:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for i in range(count):
            started = time.perf_counter()
            conn.sendall(b"ping %d" % i)
            assert conn.recv(100) == b"ping %d" % i
            times.append(time.perf_counter() - started)
        return times


def test_a_delayed_echo_is_two_delays_slower_per_round_trip(echo: int) -> None:
    proxies = ProxyThread()
    try:
        proxy = proxies.add(f"127.0.0.1:{echo}", DELAY)
        direct, delayed = _round_trips(echo), _round_trips(proxy.port)
        assert min(delayed) - min(direct) >= 2 * DELAY, (direct, delayed)
        assert _Echo.closed.wait(5)
    finally:
        proxies.stop()


def test_bytes_arrive_whole_and_in_order_and_a_hang_up_goes_through(echo: int) -> None:
    proxies = ProxyThread()
    try:
        proxy = proxies.add(f"http://127.0.0.1:{echo}/ignored", DELAY)
        body = os.urandom(3 << 20)
        with socket.create_connection(("127.0.0.1", proxy.port)) as conn:
            sender = threading.Thread(target=conn.sendall, args=(body,))
            sender.start()
            received = bytearray()
            while len(received) < len(body):
                received += conn.recv(1 << 20)
            sender.join()
        assert bytes(received) == body
        assert _Echo.closed.wait(5)
    finally:
        proxies.stop()
