"""Streams bytes in and out of the app: request bodies in bounded chunks, ranged responses out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from flask import Request, Response
from werkzeug.exceptions import ClientDisconnected

from app.errors import BadRequest, BodyTooLarge, UploadIncomplete
from app.model.sizes import human_size
from app.storage.base import CHUNK_SIZE

MAX_JSON_BODY = 1024 * 1024  # batch existence of 1,000 paths of 1 KiB fits


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
) -> Response:
    """200 with the whole body, 206 with the requested range, or 416; body streamed from `read`."""
    start, stop, status = 0, size, 200
    if request.range is not None:
        wanted = request.range.range_for_length(size)
        if wanted is None:
            response = Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            return response
        start, stop, status = wanted[0], wanted[1], 206
    body: Iterator[bytes] | list[bytes] = [] if request.method == "HEAD" else read(start, stop)
    response = Response(
        body,
        status=status,
        headers=headers,
        direct_passthrough=True,
        mimetype="application/octet-stream",
    )
    response.headers["Content-Length"] = str(stop - start)
    response.headers["Accept-Ranges"] = "bytes"
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return response
