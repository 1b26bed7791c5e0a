"""When the worker's poller hands a request to a thread: its head complete, a small body complete (sized
and chunked), a large one from its head (sized) or its first MiB (chunked); `Expect: 100-continue`
wanted once; what cannot be framed refused, never handed on; deadlines."""

from __future__ import annotations

from typing import Any

import pytest

from app.request_arrival import BODY_BUFFER, Arrival
from app.request_framing import HEADER_LIMIT, FramingError


def arrival(data: bytes) -> Arrival:
    conn: Any = type("Conn", (), {"key": "192.0.2.1"})()
    return Arrival(conn, first_byte_by=0.0, data=data)


HEAD = b"PUT /ml/vision/-/data/a HTTP/1.1\r\nHost: r\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"GET / HTTP/1.1\r\nHost: r\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: r\r\n\r", False),
        (b"GET / HTTP/1.1\r\nHost: r\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: r\r\n\r\nGET /next HTTP/1.1\r\n", True),  # pipelined
        (b"\r\nGET / HTTP/1.1\r\nHost: r\r\n\r\n", True),  # one empty line before the request line
        (HEAD + b"Content-Length: 5\r\n\r\nabc", False),
        (HEAD + b"Content-Length: 5\r\n\r\nabcde", True),
        (HEAD + b"content-length:  5 \r\n\r\nabcde", True),
        (HEAD + b"Content-Length: %d\r\n\r\n" % BODY_BUFFER + b"x" * (BODY_BUFFER - 1), False),
        (HEAD + b"Content-Length: %d\r\n\r\n" % (BODY_BUFFER + 1), True),  # a thread streams it
        (HEAD + CHUNKED + b"5\r\nab", False),
        (HEAD + CHUNKED + b"5\r\nabcde\r\n0\r\n\r\n", True),
        (HEAD + CHUNKED + b"5;ext=1\r\nabcde\r\n0\r\nX-T: 1\r\n", False),
        (HEAD + CHUNKED + b"5;ext=1\r\nabcde\r\n0\r\nX-T: 1\r\n\r\n", True),
        (HEAD + CHUNKED + b"%x\r\n" % (BODY_BUFFER + 1) + b"x" * BODY_BUFFER, False),
        (HEAD + CHUNKED + b"%x\r\n" % (BODY_BUFFER + 1) + b"x" * (BODY_BUFFER + 1), True),  # from its 1st MiB
    ],
)
def test_complete(data: bytes, complete: bool) -> None:
    assert arrival(data).complete() is complete


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"\x16\x03\x01\x02\x00\x01", 400),  # a TLS hello on the http port: refused at once
        (b"G" * (HEADER_LIMIT + 1), 431),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * HEADER_LIMIT + b"\r\n\r\n", 431),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
        (HEAD + CHUNKED + b"zz\r\n", 400),
    ],
)
def test_what_cannot_be_framed_is_refused(data: bytes, status: int) -> None:
    with pytest.raises(FramingError) as refused:
        arrival(data).complete()
    assert refused.value.status == status


def test_a_body_arriving_in_pieces_is_read_once_and_completes() -> None:
    body = b"3\r\nabc\r\n10;x=y\r\n" + b"z" * 16 + b"\r\n0\r\nX-T: 1\r\n\r\n"
    request = arrival(HEAD + CHUNKED)
    for byte in body[:-1]:
        request.add(bytes([byte]))
        assert not request.complete()
    request.add(body[-1:])
    assert request.complete()


def test_continue_is_wanted_once_and_only_with_the_head_in() -> None:
    request = arrival(HEAD + b"Content-Length: 5\r\nExpect: 100-continue\r\n")
    assert not request.complete() and not request.wants_continue()
    request.add(b"\r\n")
    assert not request.complete() and request.wants_continue()
    request.continued = True
    assert not request.wants_continue()
    request.add(b"abcde")
    assert request.complete()


def test_deadline_grows_with_what_arrives_up_to_a_cap() -> None:
    request = arrival(b"G")
    assert request.started is not None
    first = request.deadline() - request.started
    request.add(b"x" * 5000)  # 500 bytes/s earn a second each
    assert request.deadline() - request.started == pytest.approx(first + 10, abs=0.01)
    request.add(b"x" * 10**6)
    assert request.deadline() - request.started == 40
    idle = arrival(b"")
    assert idle.started is None and idle.deadline() == 0.0  # until its first byte: the idle limit
