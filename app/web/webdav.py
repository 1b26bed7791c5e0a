"""The WebDAV subset DVC's `webdav` remote uses, on the data-plane URLs: PROPFIND, MKCOL, OPTIONS
(research/dvc-webdav-protocol.md). Multistatus XML is streamed from templates."""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import format_datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

from flask import Request, Response, request

from app.errors import MethodNotAllowed, PermissionDenied
from app.model.objects import ObjectInfo
from app.model.projects import ProjectRef
from app.registry import Browse
from app.web.context import services
from app.web.credentials import credential_from

ALLOWED = "OPTIONS, GET, HEAD, PUT, POST, DELETE, PROPFIND, MKCOL"
_FLUSH_EVERY = 200  # responses per chunk of a streamed multistatus


def options(_: ProjectRef, __: str) -> Response:
    """DAV class 1, and what the data plane accepts; no credential needed, nothing about the project told."""
    return Response(
        status=200, headers={"DAV": "1", "Allow": ALLOWED, "Accept-Ranges": "bytes", "MS-Author-Via": "DAV"}
    )


def mkcol(_: ProjectRef, path: str) -> Response:
    """201 always (also when the collection exists: never 204, and no 405 round trip for DVC)."""
    services().registry.make_collection(path.rstrip("/"))
    return Response(status=201)


def proppatch(ref: ProjectRef, path: str) -> Response:
    """PROPPATCH: not built yet."""
    raise MethodNotAllowed("PROPPATCH is not supported yet")


def propfind(ref: ProjectRef, path: str) -> Response:
    """207 with the resource itself and, for `Depth: 1` on a collection, its children."""
    depth = request.headers.get("Depth", "1").strip().lower()
    if depth == "infinity":  # RFC 4918 9.1: a server may refuse it (propfind-finite-depth)
        raise PermissionDenied("PROPFIND with Depth: infinity is not supported; list with Depth: 1")
    browse = services().registry.browse(credential_from(request), ref, path.rstrip("/"))
    body = _multistatus(_base_href(request), browse, list_children=depth != "0" and browse.info is None)
    return Response(body, status=207, content_type="application/xml; charset=utf-8")


def _base_href(req: Request) -> str:
    """The requested path as the client addressed it (mount prefix included), without a trailing slash."""
    return (req.script_root + req.path).rstrip("/")


def _href(path: str, collection: bool) -> str:
    return quote(path + ("/" if collection else ""), safe="/")


_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">'
_TAIL = "</D:multistatus>"
_OK = "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
_COLLECTION = (
    "<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype>"
    "<D:getcontentlength>0</D:getcontentlength></D:prop>" + _OK
)
_OBJECT = (
    "<D:response><D:href>{href}</D:href><D:propstat><D:prop><D:resourcetype/>"
    "<D:getcontentlength>{size}</D:getcontentlength><D:getetag>{etag}</D:getetag>"
    "<D:getlastmodified>{modified}</D:getlastmodified></D:prop>" + _OK
)


def _multistatus(base: str, browse: Browse, *, list_children: bool) -> Iterator[bytes]:
    """The multistatus document, a chunk per _FLUSH_EVERY responses. Written from templates: hrefs are
    percent-encoded and the other values are numbers, an md5 etag and a date, so nothing else needs
    escaping (the standard library's XMLGenerator took half of the CPU of a DVC webdav push)."""
    chunk = [_HEAD, _response(base, browse.info)]
    if list_children:
        for count, (name, info) in enumerate(browse.children, start=1):
            chunk.append(_response(f"{base}/{name}", info))
            if count % _FLUSH_EVERY == 0:
                yield "".join(chunk).encode()
                chunk = []
    chunk.append(_TAIL)
    yield "".join(chunk).encode()


def _response(path: str, info: ObjectInfo | None) -> str:
    """One <D:response>: resourcetype and getcontentlength always (DVC needs them), etag and mtime too
    for objects; nothing else, because status checks download whole prefix listings."""
    if info is None:
        return _COLLECTION.format(href=_href(path, collection=True))
    return _OBJECT.format(
        href=_href(path, collection=False),
        size=info.size,
        etag=escape(info.etag),
        modified=format_datetime(info.created_at, usegmt=True),
    )
