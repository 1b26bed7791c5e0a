"""Streams bytes in and out of the app: request bodies in bounded chunks, ranged responses out."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

from flask import Request, Response
from werkzeug.exceptions import ClientDisconnected

from app.errors import BadRequest, BodyTooLarge, UploadIncomplete
from app.model.sizes import human_size
from app.storage.base import CHUNK_SIZE

MAX_JSON_BODY = 1024 * 1024  # batch existence of 1,000 paths of 1 KiB fits
MAX_RANGES = 16  # parts of a multipart/byteranges answer; more: the whole body


def bounded_body(request: Request, limit: int) -> bytes:
    """The whole body (sized or chunked) when it is at most `limit` bytes: 413 from its Content-Length
    before reading anything, or as soon as a chunked body passes the limit."""
    too_large = BodyTooLarge(f"Request body too large: the limit is {human_size(limit)}")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = b"".join(request_chunks(request, stop_after=limit + 1))  # one byte past the limit tells
    if len(body) > limit:
        raise too_large
    return body


def json_body(request: Request, limit: int = MAX_JSON_BODY) -> Any:
    """The body as JSON, {} when there is none; 413 past `limit`, 400 when it is not sent as JSON
    (Content-Type) or is not strict JSON."""
    body = bounded_body(request, limit)
    if not body:
        return {}
    if not request.is_json:
        raise BadRequest(
            f"Invalid request: send the body as JSON (Content-Type: application/json, not "
            f"{request.mimetype[:60] or 'none'})"
        )
    return parse_json(body, what="Invalid request: the body")


def parse_json(body: bytes, *, what: str) -> Any:
    """Strict JSON (RFC 8259): UTF-8, no duplicate keys, no NaN or Infinity; 400 "<what> is not JSON (why)"
    otherwise. Python's json takes all three, and a duplicate key read one way here and another way by
    whatever checked the body before us is how a check gets bypassed."""
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:  # nested deeper than Python's stack
        raise BadRequest(f"{what} is not JSON (nested too deep)") from None
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError too
        reason = "not UTF-8" if isinstance(e, UnicodeDecodeError) else str(e)
        raise BadRequest(f"{what} is not JSON ({reason[:120]})") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {json.dumps(key)[:60]}")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def request_chunks(request: Request, stop_after: int | None = None) -> Iterator[bytes]:
    """The body (sized or chunked) in chunks of at most CHUNK_SIZE; UploadIncomplete when cut off.
    With stop_after, reading ends once that many bytes have come (the rest is left unread)."""
    stream = request.stream
    expected, received = request.content_length, 0
    while stop_after is None or received < stop_after:
        try:
            chunk = stream.read(CHUNK_SIZE if stop_after is None else min(CHUNK_SIZE, stop_after - received))
        except TimeoutError:  # the server's worker gives up on clients that send too slowly
            raise UploadIncomplete("Upload incomplete: the client sent too slowly") from None
        except (OSError, ClientDisconnected):
            raise UploadIncomplete("Upload incomplete: the client disconnected") from None
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    if stop_after is not None and received >= stop_after:
        return
    if expected is not None and received != expected:
        raise UploadIncomplete(f"Upload incomplete: received {received} of {expected} bytes")


def ranged_response(
    request: Request,
    size: int,
    read: Callable[[int, int], Iterator[bytes]],
    headers: dict[str, str],
    *,
    content_type: str = "application/octet-stream",
    ranged: bool = True,
) -> Response:
    """200 with the whole body, 206 with the requested range (several: multipart/byteranges), or 416;
    body streamed from `read`. ranged=False (an If-Range that does not hold): 200 whatever Range says."""
    spans = _spans(request, size) if ranged else None
    if spans == []:
        return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    head = request.method == "HEAD"
    if spans is not None and len(spans) > 1:
        return _multipart(spans, size, read, headers, content_type, head)
    start, stop = spans[0] if spans else (0, size)
    response = Response(
        [] if head else read(start, stop),
        status=200 if spans is None else 206,
        headers=headers,
        direct_passthrough=True,
        content_type=content_type,
    )
    response.headers["Content-Length"] = str(stop - start)
    response.headers["Accept-Ranges"] = "bytes"
    if spans is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return response


def _spans(request: Request, size: int) -> list[tuple[int, int]] | None:
    """The [start, stop) spans a Range asks for: None for the whole body (no Range, or several ranges
    that overlap, come out of order or are too many to be worth parts: RFC 9110 14.2 lets a server ignore
    them), [] when none is satisfiable (416)."""
    if request.range is None or request.range.units != "bytes":
        return None
    spans = []
    for begin, end in request.range.ranges:
        start, stop = (max(size + begin, 0), size) if begin < 0 else (begin, min(end or size, size))
        if start < stop:
            spans.append((start, stop))
    if len(spans) > MAX_RANGES or any(a[1] > b[0] for a, b in pairwise(spans)):
        return None
    return spans


def _multipart(
    spans: list[tuple[int, int]],
    size: int,
    read: Callable[[int, int], Iterator[bytes]],
    headers: dict[str, str],
    content_type: str,
    head: bool,
) -> Response:
    """206 multipart/byteranges (RFC 9110 14.6): each part with its Content-Type and Content-Range."""
    boundary = secrets.token_hex(16)
    heads = [
        f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n".encode("latin-1")
        for start, stop in spans
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(h) for h in heads) + sum(stop - start for start, stop in spans) + len(tail)

    def body() -> Iterator[bytes]:
        for part, (start, stop) in zip(heads, spans, strict=True):
            yield part
            yield from read(start, stop)
        yield tail

    response = Response(
        [] if head else body(),
        status=206,
        headers=headers,
        direct_passthrough=True,
        content_type=f"multipart/byteranges; boundary={boundary}",
    )
    response.headers["Content-Length"] = str(length)
    response.headers["Accept-Ranges"] = "bytes"
    return response
