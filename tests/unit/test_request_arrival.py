"""When the worker's poller hands a request to a thread: headers complete, small bodies complete (sized
and chunked), `Expect: 100-continue` answered, oversized headers refused; unusual framing goes to
gunicorn's parser at once."""

from __future__ import annotations

from typing import Any

import pytest

from app.gunicorn_worker import BODY_BUFFER, HEADER_LIMIT, Arrival, Framing, _chunked_end


def arrival(data: bytes) -> Arrival:
    conn: Any = object()
    return Arrival(conn, first_byte_by=0.0, data=data)


HEAD = b"PUT /ml/vision/-/data/a HTTP/1.1\r\nHost: r\r\n"


@pytest.mark.parametrize(
    ("data", "state"),
    [
        (b"GET / HTTP/1.1\r\nHost: r\r\n", "waiting"),
        (b"GET / HTTP/1.1\r\nHost: r\r\n\r\n", "complete"),
        (b"GET / HTTP/1.1\r\nHost: r\r\n\r\nGET /next HTTP/1.1\r\n", "complete"),  # pipelined
        (HEAD + b"Content-Length: 5\r\n\r\nabc", "waiting"),
        (HEAD + b"Content-Length: 5\r\n\r\nabcde", "complete"),
        (HEAD + b"content-length:  5 \r\n\r\nabcde", "complete"),
        (HEAD + b"Content-Length: %d\r\n\r\n" % (BODY_BUFFER + 1), "complete"),  # a thread streams it
        (HEAD + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", "continue"),
        (HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", "complete"),  # gunicorn refuses it
        (HEAD + b"Content-Length: -5\r\n\r\n", "complete"),
        (HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "complete"),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", "complete"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", "waiting"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", "complete"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nabcde\r\n0\r\nX-T: 1\r\n", "waiting"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nabcde\r\n0\r\nX-T: 1\r\n\r\n", "complete"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", "complete"),  # malformed: gunicorn says 400
        (b"G" * (HEADER_LIMIT + 1), "too large"),
        (b"\x16\x03\x01\x02\x00\x01", "not http"),  # a TLS hello on the http port: refused at once
        (b"\r\nGET / HTTP/1.1\r\n", "waiting"),  # an empty line before the request line is allowed
        (b"GET / HTTP/1.1\r\nX: " + b"a" * HEADER_LIMIT + b"\r\n\r\n", "too large"),
    ],
)
def test_state(data: bytes, state: str) -> None:
    assert arrival(data).state() == state


def test_past_the_budget_headers_are_enough() -> None:
    waiting = arrival(HEAD + b"Content-Length: 5\r\n\r\nab")
    assert waiting.state(gather=True) == "waiting"
    assert waiting.state(gather=False) == "complete"


def test_continue_is_sent_once() -> None:
    request = arrival(HEAD + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    request.continued = True
    assert request.state() == "waiting"
    request.add(b"abcde")
    assert request.state() == "complete"


@pytest.mark.parametrize(
    ("body", "end"),
    [
        (b"", None),
        (b"0\r\n", None),
        (b"0\r\n\r\n", 5),
        (b"3\r\nabc\r\n0\r\n\r\nGET", 13),
        (b"-3\r\nabc\r\n", 0),
        (b"1" * 2000, 0),  # a size line that never ends
        (b"fffffff\r\nabc", None),
    ],
)
def test_chunked_end(body: bytes, end: int | None) -> None:
    assert _chunked_end(body) == end


def test_framing_reads_only_what_it_needs() -> None:
    framing = Framing.of(HEAD + b"Content-Length: 12\r\nEXPECT: 100-Continue")
    assert framing == Framing(length=12, chunked=False, expects_continue=True)
    assert framing.gathers()
    assert not Framing(length=BODY_BUFFER + 1, chunked=False, expects_continue=False).gathers()


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
