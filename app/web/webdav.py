"""WebDAV on the data-plane URLs (RFC 4918, as DVC's webdav remote, rclone, webdav4 and the mounts use
it): PROPFIND, PROPPATCH, MKCOL, OPTIONS. COPY/MOVE are dav_copy, LOCK/UNLOCK dav_locks."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from xml.sax.saxutils import quoteattr

from flask import Request, Response, request

from app.dav import VALUE_LIMIT
from app.errors import BadRequest, PermissionDenied, RegistryError
from app.model.identity import Action
from app.model.projects import ProjectRef
from app.web import dav_locks
from app.web.context import services
from app.web.credentials import credential_from
from app.web.dav_render import HEAD, PROTECTED, TAIL, href, multistatus, response
from app.web.dav_xml import (
    DAV,
    NAME_LIMIT,
    NAMESPACE_LIMIT,
    Change,
    PropName,
    parse_propfind,
    parse_proppatch,
)
from app.web.streaming import bounded_body

DAV_CLASSES = "1, 2"  # class 2: LOCK/UNLOCK (dav_locks)
ALLOWED = "OPTIONS, GET, HEAD, PUT, POST, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK"
BODY_LIMIT = 2 * 1024 * 1024  # a PROPPATCH may set up to 1 MiB of properties, in XML
_XML = "application/xml; charset=utf-8"
# Properties a client sets to give a file its modification time: RFC 4918's getlastmodified (HTTP-date),
# ownCloud's lastmodified in DAV: (unix seconds, rclone's owncloud/nextcloud vendors), Windows' own.
_MTIME = {
    (DAV, "getlastmodified"): "date",
    (DAV, "lastmodified"): "seconds",
    ("urn:schemas-microsoft-com:", "Win32LastModifiedTime"): "date",
}
_IGNORED = {("http://owncloud.org/ns", "checksums")}  # computed from the bytes: a set is taken, not kept


class UnsupportedMediaType(RegistryError):
    """MKCOL with a body (RFC 4918 9.3.1: the server does not understand it)."""

    status, code = 415, "unsupported_media_type"


def options(_: ProjectRef, __: str) -> Response:
    """The DAV classes and the methods the data plane accepts; no credential needed, nothing told."""
    headers = {"DAV": DAV_CLASSES, "Allow": ALLOWED, "Accept-Ranges": "bytes", "MS-Author-Via": "DAV"}
    return Response(status=200, headers=headers)


def mkcol(ref: ProjectRef, path: str) -> Response:
    """201 when made, and also when the collection exists (see app.dav); 415 with a body."""
    dav = services().registry.dav
    dav.grant(credential_from(request), ref, Action.WRITE)
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    if has_body and bounded_body(request, BODY_LIMIT):
        raise UnsupportedMediaType("MKCOL takes no request body")
    dav.make_collection(credential_from(request), ref, path.strip("/"))
    return Response(status=201)


def propfind(ref: ProjectRef, path: str) -> Response:
    """207 with the resource itself and, for `Depth: 1` (or none) on a collection, its members; the
    properties the body asks for (none: allprop). 404 for what does not exist."""
    depth = request.headers.get("Depth", "1").strip().lower()
    if depth == "infinity":  # RFC 4918 9.1: a server may refuse it (propfind-finite-depth)
        raise PermissionDenied("PROPFIND with Depth: infinity is not supported; list with Depth: 1")
    if depth not in ("0", "1"):
        raise BadRequest(f"Depth must be 0, 1 or infinity, not {depth[:20]!r}")
    ask = parse_propfind(bounded_body(request, BODY_LIMIT))
    found = services().registry.dav.find(
        credential_from(request),
        ref,
        path.strip("/"),
        members=depth == "1",
        properties=ask.kind != "prop" or any(n not in _KNOWN for n in ask.names),
    )
    return Response(multistatus(_base_href(request), found, ask), status=207, content_type=_XML)


def proppatch(ref: ProjectRef, path: str) -> Response:
    """207 with each property's outcome: all set or removed in document order, or none (a protected or
    too large one fails, the others 424)."""
    changes = parse_proppatch(bounded_body(request, BODY_LIMIT))
    dav, credential, path = services().registry.dav, credential_from(request), path.strip("/")
    dav.grant(credential, ref, Action.WRITE)  # 401/403 before telling what is there
    found = dav.find(credential, ref, path, members=False, properties=False).entry
    dav_locks.check_lock(ref, path)  # 423 on a locked resource without its token
    failed = _refusals(changes)
    if not failed:
        dead = [(*c.name, c.value) for c in changes if c.name not in _MTIME and c.name not in _IGNORED]
        refused = dav.patch(credential, ref, path, dead)
        if refused is not None:
            failed = {c.name: (refused.status, refused.reason) for c in changes}
        elif (mtime := _last_mtime(changes)) is not None:
            dav.set_mtime(credential, ref, path, mtime)
    by_status: dict[int, list[str]] = {}
    for name in dict.fromkeys(c.name for c in changes):
        status = failed.get(name, (424, ""))[0] if failed else 200
        by_status.setdefault(status, []).append(_empty(name))
    reason = "; ".join(dict.fromkeys(r for _, r in failed.values() if r))
    target = href(_base_href(request), collection=found.info is None)
    body = HEAD + response(target, list(by_status.items()), reason) + TAIL
    return Response(body, status=207, content_type=_XML)


_KNOWN = frozenset(PROTECTED) | {(DAV, "getlastmodified")}


def _refusals(changes: list[Change]) -> dict[PropName, tuple[int, str]]:
    """The changes that cannot be made, with their status and reason (then none is made)."""
    failed = {c.name: refusal for c in changes if (refusal := _refusal(c)) is not None}
    for change in changes:
        if change.name in _MTIME and change.value is not None and _mtime(change) is None:
            failed[change.name] = (400, f"{change.name[1]} is not a date")
    return failed


def _last_mtime(changes: list[Change]) -> datetime | None:
    """The modification time the last change of one of the mtime properties gives."""
    given = [_mtime(c) for c in changes if c.name in _MTIME and c.value is not None]
    return given[-1] if given else None


def _refusal(change: Change) -> tuple[int, str] | None:
    """Why a change cannot be made, before anything is stored."""
    namespace, name = change.name
    if change.name in _IGNORED:
        return None
    if change.name in PROTECTED:
        return 403, f"{name} is a protected property (computed by the registry)"
    if len(name) > NAME_LIMIT or len(namespace) > NAMESPACE_LIMIT:
        return 413, f"Property names are limited to {NAME_LIMIT} characters, namespaces to {NAMESPACE_LIMIT}"
    if change.value is not None and len(change.value) > VALUE_LIMIT:
        return 413, f"A property value is limited to {VALUE_LIMIT // 1024} KiB"
    return None


def _mtime(change: Change) -> datetime | None:
    """The modification time a change gives, None when its value is no date."""
    text = (change.value or "").strip()
    try:
        if _MTIME[change.name] == "seconds":
            return datetime.fromtimestamp(float(text), UTC)
        parsed = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _empty(name: PropName) -> str:
    namespace, local = name
    if namespace == DAV:
        return f"<D:{local}/>"
    return f"<x:{local} xmlns:x={quoteattr(namespace)}/>" if namespace else f"<{local}/>"


def _base_href(req: Request) -> str:
    """The requested path as the client addressed it (mount prefix included), without a trailing slash."""
    return (req.script_root + req.path).rstrip("/")
