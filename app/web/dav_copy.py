"""WebDAV COPY and MOVE within a project, server-side (a bucket copy; RFC 4918 9.8, 9.9): the headers
(`Destination`, `Overwrite`, `Depth`) read here, the rules in app.moves."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import Response, current_app, request
from werkzeug.exceptions import HTTPException

from app.errors import BadRequest
from app.model.identity import Action
from app.model.projects import ProjectRef
from app.moves import DestinationElsewhere
from app.web.context import services
from app.web.credentials import credential_from
from app.web.dav_locks import check_lock


def copy(ref: ProjectRef, path: str) -> Response:
    """201 when the destination is new, 204 when it replaced something."""
    services().registry.dav.grant(credential_from(request), ref, Action.WRITE)  # 401/403 before the headers
    source, destination = path.strip("/"), _destination()
    depth = request.headers.get("Depth", "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise BadRequest("Invalid Depth for COPY: use 0 or infinity")
    check_lock(destination[0], destination[1], members=True)
    created = services().moves.copy(
        credential_from(request),
        ref,
        source,
        destination,
        overwrite=_overwrite(),
        infinite=depth == "infinity",
    )
    return Response(status=201 if created else 204)


def move(ref: ProjectRef, path: str) -> Response:
    """201 when the destination is new, 204 when it replaced something; the source's locks go with it."""
    services().registry.dav.grant(credential_from(request), ref, Action.WRITE)  # 401/403 before the headers
    source, destination = path.strip("/"), _destination()
    if request.headers.get("Depth", "infinity").strip().lower() != "infinity":
        raise BadRequest("Invalid Depth for MOVE: a MOVE always moves everything under it (infinity)")
    check_lock(ref, source, members=True)
    check_lock(destination[0], destination[1], members=True)
    svc, credential = services(), credential_from(request)
    created = svc.moves.move(credential, ref, source, destination, overwrite=_overwrite())
    svc.locks.release_under(credential, ref, source)
    return Response(status=201 if created else 204)


def _overwrite() -> bool:
    value = request.headers.get("Overwrite", "T").strip().upper()
    if value not in ("T", "F"):
        raise BadRequest("Invalid Overwrite header: use T or F")
    return value == "T"


def _destination() -> tuple[ProjectRef, str]:
    """The Destination header (an absolute URL or path) as a project and a data path: 400 when missing or
    malformed, 403 when it is on another host or outside the data plane."""
    value = request.headers.get("Destination", "").strip()
    if not value:
        raise BadRequest("COPY and MOVE need a Destination header")
    parts = urlsplit(value)
    if parts.scheme and parts.scheme not in ("http", "https"):
        raise BadRequest("Invalid Destination: an http(s) URL or an absolute path")
    if parts.netloc and parts.netloc.lower() != request.host.lower():
        raise DestinationElsewhere(
            f"Destination is on another server ({parts.netloc}); COPY/MOVE stay on this one"
        )
    path = unquote(parts.path)
    root = request.script_root
    if not path.startswith("/") or (root and not path.startswith(root + "/")):
        raise DestinationElsewhere("Destination is outside this registry's data plane")
    adapter = current_app.url_map.bind(request.host, script_name=root or None)
    try:
        endpoint, args = adapter.match(path[len(root) :], method="PUT")
    except HTTPException:
        raise DestinationElsewhere("Destination is not a data-plane URL of this registry") from None
    if endpoint not in ("data.by_id", "data.by_path"):
        raise DestinationElsewhere("Destination is not a data-plane URL of this registry")
    dest_ref = (
        ProjectRef(id=args["project_id"]) if "project_id" in args else ProjectRef(path=args["project_path"])
    )
    return dest_ref, str(args["object_path"]).strip("/")
