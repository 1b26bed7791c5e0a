"""How the worker's poller frames a request before any thread sees it (RFC 9112): where its head ends,
whether a body follows and where that ends, and a refusal (400, 431 or 501) for anything framed any
other way. Pure functions over bytes; the rules are gunicorn's own or stricter, so whatever passes here
means the same to the parser that reads it next."""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER_LIMIT = 64 * 1024  # the whole header block; gunicorn's own per-line limits apply after
CHUNK_LINE_LIMIT = 1024  # a chunk-size line with its extensions
TRAILER_LIMIT = 16 * 1024
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_FIELD_NAME = re.compile(_TOKEN)
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_CHUNK_EXT = re.compile(  # gunicorn's chunk-ext grammar (RFC 9112 7.1.1)
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb'|"(?:[^"\\\r\n]|\\.)*"))?)*'
)
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
CREDENTIAL_HEADERS = frozenset((b"authorization", b"private-token", b"job-token", b"deploy-token"))


class FramingError(Exception):
    """A request the poller answers itself: `status` and a one-line reason for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _bad(reason: str) -> FramingError:
    return FramingError(400, reason)


def _check_line_ends(block: bytes | bytearray, what: str) -> None:
    """Every line ends with CRLF: a bare LF or CR is refused, never guessed at (gunicorn refuses it too)."""
    crlf = block.count(b"\r\n")
    if block.count(b"\n") != crlf or block.count(b"\r") != crlf:
        raise _bad(f"{what}: every line must end with CRLF")


@dataclass(frozen=True, slots=True)
class Head:
    """What the poller reads of a header block: how the body is framed, and whose request it may be."""

    size: int  # bytes up to and including the empty line that ends the head
    length: int  # the body's Content-Length (0 when chunked or without a body)
    chunked: bool
    expects_continue: bool
    credentialed: bool  # a credential header is present (not verified: its absence is what counts)
    forwarded_for: bytes | None  # the last X-Forwarded-For entry (what the nearest proxy saw)


def read_head(data: bytes | bytearray) -> Head | None:
    """The head of the request `data` starts with; None while it has not all arrived."""
    start = 2 if data[:2] == b"\r\n" else 0  # RFC 9112 2.2: one empty line before the request line
    end = data.find(b"\r\n\r\n", start)
    if end < 0 or end > HEADER_LIMIT:
        if len(data) > HEADER_LIMIT:
            raise FramingError(431, "Request headers larger than 64 KiB")
        _check_line_ends(data[start:] if data[-1:] != b"\r" else data[start:-1], "Request head")
        return None
    block = bytes(data[start:end])
    _check_line_ends(block, "Request head")
    request_line, *fields = block.split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not _VERSION.fullmatch(parts[2]):
        raise _bad("Malformed request line")
    encodings: list[bytes] = []
    lengths: list[bytes] = []
    expects = credentialed = False
    forwarded: bytes | None = None
    for field in fields:
        name, colon, value = field.partition(b":")
        if not colon or not _FIELD_NAME.fullmatch(name):  # also obs-fold and "Name :" (RFC 9112 5.1, 5.2)
            raise _bad("Malformed header line (folded, or space before the colon)")
        name = name.lower()
        if name == b"transfer-encoding":
            encodings.append(value)
        elif name == b"content-length":
            lengths.append(value)
        elif name == b"expect":
            expects = value.strip(b" \t").lower() == b"100-continue"
        elif name in CREDENTIAL_HEADERS:
            credentialed = credentialed or bool(value.strip(b" \t"))
        elif name == b"x-forwarded-for":
            forwarded = value.rsplit(b",", 1)[-1].strip(b" \t") or None
    chunked = _chunked(encodings, lengths, parts[2])
    length = _length(lengths)
    return Head(end + 4, length, chunked, expects, credentialed, forwarded)


def _chunked(encodings: list[bytes], lengths: list[bytes], version: bytes) -> bool:
    """RFC 9112 6.1 and 6.3: one Transfer-Encoding line whose codings end with a single `chunked`."""
    if not encodings:
        return False
    if len(encodings) > 1:
        raise _bad("More than one Transfer-Encoding header")
    if lengths:
        raise _bad("Both Transfer-Encoding and Content-Length")
    codings = [coding.strip(b" \t").lower() for coding in encodings[0].split(b",")]
    if not all(codings) or codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
        raise _bad("Transfer-Encoding must end with chunked, once")
    if len(codings) > 1:  # gzip, chunked: a coding this server does not decode (RFC 9112 6.1: 501)
        raise FramingError(501, "Transfer codings other than chunked are not supported")
    if version == b"HTTP/1.0":
        raise _bad("Chunked transfer coding in an HTTP/1.0 request")
    return True


def _length(lengths: list[bytes]) -> int:
    if not lengths:
        return 0
    value = lengths[0].strip(b" \t")
    if len(lengths) > 1 or not value.isdigit() or len(value) > 18:  # isdigit(): ASCII digits only
        raise _bad("Content-Length must be one header holding one number")
    return int(value)


class ChunkedBody:
    """Where a chunked body ends, found a chunk at a time as its bytes arrive (each byte is read once).
    Offsets are into the request's bytes, the body starting at `start`."""

    def __init__(self, start: int = 0) -> None:
        self.at = start  # where the next chunk-size line (or the trailer section) starts
        self.decoded = 0  # content bytes in the chunks before `at`
        self.pending = 0  # content bytes of the chunk being received
        self.in_trailers = False

    def end(self, body: bytes | bytearray) -> int | None:
        """Where the body ends (after its trailers); None while more must come. `body` only grows."""
        while True:
            if self.in_trailers:
                return self._trailers_end(body)
            eol = body.find(b"\r\n", self.at)
            if eol < 0:
                line = body[self.at :]
                if len(line) > CHUNK_LINE_LIMIT or b"\n" in line:
                    raise _bad("Malformed chunk-size line")
                return None
            size = _chunk_size(bytes(body[self.at : eol]))
            if size == 0:
                self.at, self.in_trailers = eol + 2, True
                continue
            data_end = eol + 2 + size
            self.pending = max(0, min(size, len(body) - eol - 2))
            if len(body) < data_end + 2:
                if len(body) > data_end and body[data_end : data_end + 1] != b"\r":
                    raise _bad("Chunk data must be followed by CRLF")
                return None
            if body[data_end : data_end + 2] != b"\r\n":
                raise _bad("Chunk data must be followed by CRLF")
            self.at, self.decoded, self.pending = data_end + 2, self.decoded + size, 0

    def _trailers_end(self, body: bytes | bytearray) -> int | None:
        if body[self.at : self.at + 2] == b"\r\n":
            return self.at + 2
        end = body.find(b"\r\n\r\n", self.at)
        section = body[self.at : end if end >= 0 else len(body)]
        if end < 0 and section[-1:] == b"\r":
            section = section[:-1]
        if len(section) > TRAILER_LIMIT:
            raise _bad("Trailer section too large")
        _check_line_ends(section, "Trailer section")
        return None if end < 0 else end + 4

    def received(self) -> int:
        """Content bytes received so far, the chunk still arriving included."""
        return self.decoded + self.pending


def _chunk_size(line: bytes) -> int:
    size, semicolon, extensions = line.partition(b";")
    if semicolon:
        size = size.rstrip(b" \t")  # RFC 9112 7.1.1: whitespace before extensions, and only there
        if not _CHUNK_EXT.fullmatch(b";" + extensions):
            raise _bad("Malformed chunk extension")
    if not _CHUNK_SIZE.fullmatch(size):
        raise _bad("Malformed chunk size")
    return int(size, 16)
