"""WebDAV LOCK and UNLOCK (class 2) for the mounts that need them (RFC 4918 9.10, 9.11), and
`check_lock`, which every write of the data plane calls first (its If header, the locks in force)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from flask import Response, request

from app.errors import BadRequest
from app.locks import MAX_TIMEOUT, granted_timeout
from app.model.locks import DavLock, IfHeader, parse_if, url_path
from app.model.projects import ProjectRef
from app.web.context import services
from app.web.credentials import credential_from
from app.web.dav_xml import DAV, inner_xml, parse_xml, split
from app.web.streaming import bounded_body

BODY_LIMIT = 64 * 1024  # a lockinfo is a few hundred bytes; an owner element may hold a URL or a name
_XML = "application/xml; charset=utf-8"
_DATA_ROOT = re.compile(r"^(.*?/-/(?:data|projects/\d+/data))(?:/|$)")


def if_header(ref: ProjectRef) -> IfHeader:
    """The request's If header, tagged lists mapped to data paths of this project's data plane."""
    base = request.script_root + request.path
    found = _DATA_ROOT.match(base)
    root = found.group(1) if found else base

    def resource_path(url: str) -> str | None:
        path = url_path(url)
        if path != root and not path.startswith(root + "/"):
            return None
        return path[len(root) :].strip("/")

    return parse_if(request.headers.get("If"), resource_path)


def check_lock(ref: ProjectRef, path: str, *, members: bool = False) -> None:
    """Before a write to path (PUT, DELETE, PROPPATCH, MKCOL, COPY/MOVE destination, MOVE source): 412
    when the If header's conditions fail, 423 when a lock applies whose token the request did not submit.
    `members`: the write reaches everything under path too (DELETE, MOVE, COPY onto a collection)."""
    conditions = if_header(ref)
    services().locks.check(credential_from(request), ref, path.strip("/"), conditions, members=members)


def lock(ref: ProjectRef, path: str) -> Response:
    """A new lock (201 on an unmapped URL, which gets an empty object; 200 otherwise), or with no body a
    refresh of the lock whose token the If header names; the lock's lockdiscovery in the answer."""
    path = path.strip("/")
    locks, credential = services().locks, credential_from(request)
    timeout = granted_timeout(request.headers.get("Timeout"), MAX_TIMEOUT)
    body = bounded_body(request, BODY_LIMIT)
    if not body.strip():
        found = locks.refresh(credential, ref, path, if_header(ref), timeout)
        return _answer(found, 200, new=False)
    exclusive, owner = _lockinfo(body)
    depth = request.headers.get("Depth", "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise BadRequest("Invalid Depth for LOCK: use 0 or infinity")
    taken, created = locks.lock(
        credential, ref, path, exclusive=exclusive, infinite=depth == "infinity", owner=owner, timeout=timeout
    )
    return _answer(taken, 201 if created else 200, new=True)


def unlock(ref: ProjectRef, path: str) -> Response:
    """Release the lock named by Lock-Token (204); 400 without one, 409 when it is no lock of path."""
    token = request.headers.get("Lock-Token", "").strip()
    if not (token.startswith("<") and token.endswith(">")) or len(token) < 3:
        raise BadRequest("UNLOCK needs a Lock-Token header: <opaquelocktoken:...>")
    services().locks.unlock(credential_from(request), ref, path.strip("/"), token[1:-1].strip())
    return Response(status=204)


def _lockinfo(body: bytes) -> tuple[bool, str]:
    """(exclusive, owner XML) of a lockinfo body; 400 for anything but a write lock of a known scope."""
    root = parse_xml(body, "LOCK body")
    if split(root.tag) != (DAV, "lockinfo"):
        raise BadRequest("LOCK body must be a DAV:lockinfo element")
    scope = root.find(f"{{{DAV}}}lockscope")
    kind = root.find(f"{{{DAV}}}locktype")
    if scope is None or kind is None or kind.find(f"{{{DAV}}}write") is None:
        raise BadRequest("LOCK body must ask for a write lock (DAV:locktype/DAV:write) with a DAV:lockscope")
    exclusive = scope.find(f"{{{DAV}}}exclusive") is not None
    if not exclusive and scope.find(f"{{{DAV}}}shared") is None:
        raise BadRequest("DAV:lockscope must be DAV:exclusive or DAV:shared")
    owner = root.find(f"{{{DAV}}}owner")
    return exclusive, "" if owner is None else inner_xml(owner)


def active_lock(found: DavLock, root_href: str) -> str:
    """One DAV:activelock element."""
    remaining = max(0, int((found.expires_at - datetime.now(UTC)).total_seconds()))
    owner = f"<D:owner>{found.owner}</D:owner>" if found.owner else ""
    return (
        "<D:activelock>"
        f"<D:locktype><D:write/></D:locktype><D:lockscope><D:{'exclusive' if found.exclusive else 'shared'}/>"
        f"</D:lockscope><D:depth>{'infinity' if found.infinite else '0'}</D:depth>{owner}"
        f"<D:timeout>Second-{remaining}</D:timeout>"
        f"<D:locktoken><D:href>{escape(found.token)}</D:href></D:locktoken>"
        f"<D:lockroot><D:href>{escape(root_href)}</D:href></D:lockroot>"
        "</D:activelock>"
    )


def lockdiscovery(ref: ProjectRef, path: str, href_of_root: str) -> str:
    """The DAV:lockdiscovery content for path (PROPFIND): its active locks, or nothing."""
    found = services().locks.locks_on(credential_from(request), ref, path.strip("/"))
    return "".join(active_lock(lock, href_of_root) for lock in found)


def _answer(found: DavLock, status: int, *, new: bool) -> Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery>'
        + active_lock(found, request.script_root + request.path)
        + "</D:lockdiscovery></D:prop>"
    )
    headers = {"Lock-Token": f"<{found.token}>"} if new else {}
    return Response(body, status=status, headers=headers, content_type=_XML)
