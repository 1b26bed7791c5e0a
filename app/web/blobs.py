"""Serves the local backend's signed URLs (`/-/blobs/<token>`), so local disk acts like a bucket:
GET/HEAD for downloads (validators, conditional requests, ranges), PUT for direct upload sessions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from flask import Blueprint, Response, jsonify, request

from app.errors import FileTooLarge, NotFound, ObjectNotFound
from app.model.paths import content_type
from app.storage.local import BLOB_ROUTE, LocalBackend
from app.web.conditional import http_date, preconditions, range_holds
from app.web.context import services
from app.web.streaming import ranged_response, request_chunks

bp = Blueprint("blobs", __name__)


def _local() -> LocalBackend:
    storage = services().storage
    assert isinstance(storage, LocalBackend)
    return storage


@bp.route(BLOB_ROUTE + "<token>", methods=["GET", "HEAD"])
def blob(token: str) -> Response:
    """Stream the blob a valid, unexpired token names; no credential needed, like a signed bucket URL.
    Like a bucket, it answers with validators of its own (ETag from the file's size and mtime: its key
    holds one version, never rewritten), honours conditional requests and If-Range, and names the
    Content-Type by the file's name."""
    storage = _local()
    key, disposition = storage.resolve_signed(token)
    info = storage.stat(key)
    if info is None:
        raise ObjectNotFound("Object not found")
    tag = f"{info.size:x}-{int(info.modified.timestamp() * 1e6) if info.modified else 0:x}"
    headers = {"Cache-Control": "private, max-age=60", "ETag": f'"{tag}"'}
    if info.modified is not None:
        headers["Last-Modified"] = http_date(info.modified)
    if disposition:
        headers["Content-Disposition"] = disposition
    not_modified = preconditions(request, tag, info.modified, list(headers.items()))
    if not_modified is not None:
        return not_modified
    return ranged_response(
        request,
        info.size,
        lambda start, stop: storage.read(key, start=start, end=stop),
        headers,
        content_type=content_type(key),
        ranged=range_holds(request, tag, info.modified),
    )


@bp.put(BLOB_ROUTE + "<token>")
def put_blob(token: str) -> Response:
    """Store the body of a direct upload where its signed token says; never more than the declared size."""
    storage, uploads = _local(), services().uploads
    key, size = storage.resolve_upload(token)
    uploads.require_open(key)
    staged = storage.stage(key, _at_most(request_chunks(request), size))
    try:
        storage.commit(staged)
    finally:
        storage.discard(staged)
    try:
        uploads.require_open(key)  # closed while the body arrived: what it wrote must not stay
    except NotFound:
        storage.delete(key)
        raise
    response = jsonify({"size": staged.size, "md5": staged.md5})
    response.headers["ETag"] = f'"{staged.md5}"'
    return response


def _at_most(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise FileTooLarge(f"Body larger than the {limit} bytes this upload URL was signed for")
        yield chunk
