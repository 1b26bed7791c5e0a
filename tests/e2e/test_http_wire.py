"""HTTP rules where the wire matters, against real gunicorn: `OPTIONS *` (a request target that is no
path) and a transfer coding other than chunked on a data-plane PUT (501, answered by the poller)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from scripts.harness import RegistryServer
from tests.conftest import TOKENS

pytestmark = pytest.mark.e2e


def exchange(registry: RegistryServer, request: bytes) -> bytes:
    address = urlsplit(registry.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer


def test_options_star_is_answered_with_allow_and_dav(registry: RegistryServer) -> None:
    answer = exchange(registry, b"OPTIONS * HTTP/1.1\r\nHost: registry\r\n\r\n")  # was a 404
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 200")
    assert "\r\nallow: " in head and "put" in head and "\r\ndav: 1" in head


def test_a_transfer_coding_other_than_chunked_is_501_on_the_data_plane(registry: RegistryServer) -> None:
    put = (
        b"PUT /ml/vision/-/data/wire/a.bin HTTP/1.1\r\nHost: registry\r\n"
        b"Authorization: Bearer " + TOKENS["developer"].encode() + b"\r\n"
        b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"
    )
    assert exchange(registry, put).startswith(b"HTTP/1.1 501 ")
