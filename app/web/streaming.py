"""Streams bytes in and out of the app: request bodies in bounded chunks, ranged responses out."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Request, Response
from werkzeug.exceptions import ClientDisconnected

from app.errors import UploadIncomplete
from app.storage.base import CHUNK_SIZE


def request_chunks(request: Request) -> Iterator[bytes]:
    """The body (sized or chunked) in chunks of at most CHUNK_SIZE; UploadIncomplete when cut off."""
    stream = request.stream
    expected, received = request.content_length, 0
    while True:
        try:
            chunk = stream.read(CHUNK_SIZE)
        except (OSError, ClientDisconnected):
            raise UploadIncomplete("Upload incomplete: the client disconnected") from None
        if not chunk:
            break
        received += len(chunk)
        yield chunk
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
