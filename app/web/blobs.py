"""Serves the local backend's signed download URLs (`/-/blobs/<token>`), so local disk acts like a bucket."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.errors import ObjectNotFound
from app.storage.local import BLOB_ROUTE, LocalBackend
from app.web import services
from app.web.streaming import ranged_response

bp = Blueprint("blobs", __name__)


@bp.route(BLOB_ROUTE + "<token>", methods=["GET", "HEAD"])
def blob(token: str) -> Response:
    """Stream the blob a valid, unexpired token names; no credential needed, like a signed bucket URL."""
    storage = services().storage
    assert isinstance(storage, LocalBackend)
    key = storage.resolve_signed(token)
    info = storage.stat(key)
    if info is None:
        raise ObjectNotFound("Object not found")
    return ranged_response(
        request,
        info.size,
        lambda start, stop: storage.read(key, start=start, end=stop),
        {"Cache-Control": "private, max-age=60"},
    )
