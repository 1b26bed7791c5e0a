"""The poller's framing rules (RFC 9112): one Transfer-Encoding ending in a single `chunked` (501 for
other codings before it), one Content-Length holding one number, never both, no folded lines, CRLF only;
chunk sizes, extensions, data and trailers as gunicorn reads them; what a head says about its sender."""

from __future__ import annotations

import pytest

from app.request_framing import ChunkedBody, FramingError, Head, read_head

HEAD = b"PUT /ml/vision/-/data/a HTTP/1.1\r\nHost: r\r\n"


def head(*fields: bytes, request_line: bytes = HEAD) -> Head | None:
    return read_head(request_line + b"".join(field + b"\r\n" for field in fields) + b"\r\n")


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ((b"Transfer-Encoding: gzip, chunked",), 501),
        ((b"Transfer-Encoding: identity, chunked",), 501),
        ((b"Transfer-Encoding: br,gzip , chunked",), 501),
        ((b"Transfer-Encoding: chunked, gzip",), 400),  # 6.3: chunked not last, so no length: a MUST
        ((b"Transfer-Encoding: identity",), 400),
        ((b"Transfer-Encoding: gzip",), 400),
        ((b"Transfer-Encoding: chunked, chunked",), 400),
        ((b"Transfer-Encoding: , chunked",), 400),
        ((b"Transfer-Encoding:",), 400),
        ((b"Transfer-Encoding: identity", b"Transfer-Encoding: chunked"), 400),
        ((b"Transfer-Encoding: chunked", b"transfer-encoding: chunked"), 400),
        ((b"Content-Length: 5", b"Content-Length: 5"), 400),
        ((b"Content-Length: 5, 5",), 400),
        ((b"Content-Length: 5", b"Transfer-Encoding: chunked"), 400),
        ((b"Transfer-Encoding: chunked", b"Content-Length: 0"), 400),
        ((b"Content-Length: +5",), 400),
        ((b"Content-Length: -5",), 400),
        ((b"Content-Length: 0x5",), 400),
        ((b"Content-Length: 5 5",), 400),
        ((b"Content-Length: \xd9\xa5",), 400),  # a non-ASCII digit
        ((b"Content-Length: " + b"9" * 19,), 400),
        ((b"X-Note: a", b" b"), 400),  # obs-fold
        ((b"Transfer-Encoding: gzip,", b"\tchunked"), 400),
        ((b"Content-Length : 5",), 400),
        ((b"Content-Length\t: 5",), 400),
        ((b"No colon",), 400),
        ((b": no name",), 400),
        ((b"X-Note: a\nContent-Length: 5",), 400),  # bare LF
        ((b"X-Note: a\rContent-Length: 5",), 400),  # bare CR
    ],
)
def test_refused(fields: tuple[bytes, ...], status: int) -> None:
    with pytest.raises(FramingError) as refused:
        head(*fields)
    assert refused.value.status == status


@pytest.mark.parametrize(
    "request_line",
    [
        b"PUT /a HTTP/1.1 extra\r\n",
        b"PUT  /a HTTP/1.1\r\n",
        b"PUT /a\r\n",
        b"PUT /a HTTP/one\r\n",
        b"\r\n\r\nGET / HTTP/1.1\r\n",  # one empty line may come first, not two
    ],
)
def test_a_malformed_request_line_is_refused(request_line: bytes) -> None:
    with pytest.raises(FramingError) as refused:
        head(b"Host: r", request_line=request_line)
    assert refused.value.status == 400


def test_chunked_needs_http_1_1() -> None:
    with pytest.raises(FramingError):
        head(b"Transfer-Encoding: chunked", request_line=b"PUT /a HTTP/1.0\r\n")
    assert head(b"Content-Length: 3", request_line=b"PUT /a HTTP/1.0\r\n") is not None


def test_bare_lf_is_refused_before_the_head_ends() -> None:
    with pytest.raises(FramingError):
        read_head(b"GET / HTTP/1.1\nHost: r\n")
    assert read_head(b"GET / HTTP/1.1\r\nHost: r\r") is None  # a CR whose LF is on its way


def test_a_head_says_how_its_body_is_framed_and_who_sends_it() -> None:
    assert head(b"content-length:  12 ", b"EXPECT: 100-Continue") == Head(
        size=len(HEAD) + 46,
        length=12,
        chunked=False,
        expects_continue=True,
        credentialed=False,
        forwarded_for=None,
    )
    chunked = head(
        b"Transfer-Encoding: Chunked", b"Private-Token: x", b"X-Forwarded-For: 198.51.100.7, 10.0.0.2"
    )
    assert chunked is not None and chunked.chunked and chunked.length == 0
    assert chunked.credentialed and chunked.forwarded_for == b"10.0.0.2"
    for credential in (b"Authorization: Bearer x", b"JOB-TOKEN: x", b"Deploy-Token: x"):
        found = head(credential)
        assert found is not None and found.credentialed
    empty = head(b"Authorization: ")
    assert empty is not None and not empty.credentialed
    assert read_head(b"GET / HTTP/1.1\r\nHost: r\r\n") is None


@pytest.mark.parametrize(
    ("body", "end"),
    [
        (b"", None),
        (b"0\r\n", None),
        (b"0\r\n\r", None),
        (b"0\r\n\r\n", 5),
        (b"000\r\n\r\n", 7),
        (b"3\r\nabc\r\n0\r\n\r\nGET", 13),
        (b'3;a=b;c\r\nabc\r\n0;x="y"\r\n\r\n', 25),
        (b"3 ;a=b\r\nabc\r\n0\r\n\r\n", 18),  # whitespace before an extension, and only there
        (b"A\r\n0123456789\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n", 36),
        (b"fffffff\r\nabc", None),
    ],
)
def test_chunked_end(body: bytes, end: int | None) -> None:
    assert ChunkedBody().end(body) == end


@pytest.mark.parametrize(
    "body",
    [
        b"-3\r\nabc\r\n",
        b"0x3\r\nabc\r\n",
        b"+3\r\nabc\r\n",
        b"1_0\r\n",
        b" 3\r\nabc\r\n",
        b"3 \r\nabc\r\n",
        b"\r\n",
        b"3;\r\nabc\r\n",
        b"3;a b\r\nabc\r\n",
        b"3\r\nabcd\r\n",
        b"3\r\nabcX",
        b"3\nabc\r\n",
        b"1" * 2000,  # a size line that never ends
        b"0\r\nX-T: 1\n\r\n",
        b"0\r\nX-T: " + b"a" * 20000,
    ],
)
def test_chunked_refused(body: bytes) -> None:
    with pytest.raises(FramingError) as refused:
        ChunkedBody().end(body)
    assert refused.value.status == 400


def test_chunked_counts_what_has_arrived_resuming_where_it_stopped() -> None:
    body = ChunkedBody(start=4)
    data = bytearray(b"head4\r\nabcd")  # the body starts at 4
    assert body.end(data) is None and body.received() == 4
    data += b"\r\n2\r\nef\r\n"
    assert body.end(data) is None and body.received() == 6 and body.at == len(data)
    data += b"0\r\n\r\n"
    assert body.end(data) == len(data)
