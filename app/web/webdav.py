"""The WebDAV subset DVC's `webdav` remote uses, on the data-plane URLs: PROPFIND, MKCOL, OPTIONS
(research/dvc-webdav-protocol.md). Multistatus XML is streamed with the standard library's XMLGenerator."""

from __future__ import annotations

import io
from collections.abc import Iterator
from email.utils import format_datetime
from urllib.parse import quote
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesNSImpl

from flask import Request, Response, request

from app.errors import PermissionDenied
from app.model import ObjectInfo, ProjectRef
from app.registry import Browse
from app.web.context import services
from app.web.credentials import credential_from

DAV = "DAV:"
ALLOWED = "OPTIONS, GET, HEAD, PUT, POST, DELETE, PROPFIND, MKCOL"
_FLUSH_EVERY = 200  # responses per chunk of a streamed multistatus
_NO_ATTRIBUTES = AttributesNSImpl({}, {})


def options(_: ProjectRef, __: str) -> Response:
    """DAV class 1, and what the data plane accepts; no credential needed, nothing about the project told."""
    return Response(
        status=200, headers={"DAV": "1", "Allow": ALLOWED, "Accept-Ranges": "bytes", "MS-Author-Via": "DAV"}
    )


def mkcol(_: ProjectRef, path: str) -> Response:
    """201 always (also when the collection exists: never 204, and no 405 round trip for DVC)."""
    services().registry.make_collection(path.rstrip("/"))
    return Response(status=201)


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


def _multistatus(base: str, browse: Browse, *, list_children: bool) -> Iterator[bytes]:
    out = io.StringIO()
    xml = XMLGenerator(out, encoding="utf-8", short_empty_elements=True)
    xml.startDocument()
    xml.startPrefixMapping("D", DAV)
    _start(xml, "multistatus")
    _response(xml, base, browse.info)
    if list_children:
        for count, (name, info) in enumerate(browse.children, start=1):
            _response(xml, f"{base}/{name}", info)
            if count % _FLUSH_EVERY == 0:
                yield _drain(out)
    _end(xml, "multistatus")
    xml.endPrefixMapping("D")
    xml.endDocument()
    yield _drain(out)


def _drain(out: io.StringIO) -> bytes:
    data = out.getvalue()
    out.seek(0)
    out.truncate()
    return data.encode("utf-8")


def _start(xml: XMLGenerator, name: str) -> None:
    xml.startElementNS((DAV, name), f"D:{name}", _NO_ATTRIBUTES)


def _end(xml: XMLGenerator, name: str) -> None:
    xml.endElementNS((DAV, name), f"D:{name}")


def _element(xml: XMLGenerator, name: str, text: str | None = None) -> None:
    _start(xml, name)
    if text is not None:
        xml.characters(text)
    _end(xml, name)


def _response(xml: XMLGenerator, path: str, info: ObjectInfo | None) -> None:
    """One <D:response>: resourcetype and getcontentlength always (DVC needs them), etag and mtime too
    for objects; nothing else, because status checks download whole prefix listings."""
    _start(xml, "response")
    _element(xml, "href", _href(path, collection=info is None))
    _start(xml, "propstat")
    _start(xml, "prop")
    _start(xml, "resourcetype")
    if info is None:
        _element(xml, "collection")
    _end(xml, "resourcetype")
    _element(xml, "getcontentlength", str(info.size if info is not None else 0))
    if info is not None:
        _element(xml, "getetag", info.etag)
        _element(xml, "getlastmodified", format_datetime(info.created_at, usegmt=True))
    _end(xml, "prop")
    _element(xml, "status", "HTTP/1.1 200 OK")
    _end(xml, "propstat")
    _end(xml, "response")
