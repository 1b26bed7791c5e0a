"""The data plane `/<project>/-/data/<path>` (and `/-/projects/<id>/data/<path>`): HEAD, GET, PUT/POST,
DELETE for DVC's http remote and curl."""

from __future__ import annotations

from email.utils import format_datetime

from flask import Blueprint, Response, json, request
from flask.typing import ResponseReturnValue

from app.components import Components
from app.errors import MethodNotAllowed
from app.model.objects import ObjectInfo
from app.model.projects import ProjectRef
from app.web import dav_copy, dav_locks, project_pages, webdav
from app.web.context import services
from app.web.credentials import carries_basic_auth, credential_from
from app.web.streaming import ranged_response, request_chunks

bp = Blueprint("data", __name__)
METHODS = [
    "GET",
    "HEAD",
    "PUT",
    "POST",
    "DELETE",
    "OPTIONS",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
]
# Clients known to drop credentials when following a redirect to another origin.
_REDIRECT_SAFE_AGENTS = ("curl/", "python-httpx/", "Wget/")


# The data root itself (a collection for WebDAV) has an empty object path.
@bp.route("/-/projects/<id:project_id>/data", methods=METHODS, defaults={"object_path": ""})
@bp.route("/-/projects/<id:project_id>/data/", methods=METHODS, defaults={"object_path": ""})
@bp.route("/-/projects/<id:project_id>/data/<anypath:object_path>", methods=METHODS)
def by_id(project_id: int, object_path: str) -> ResponseReturnValue:
    return _dispatch(ProjectRef(id=project_id), object_path)


@bp.route("/<anypath:project_path>/-/data", methods=METHODS, defaults={"object_path": ""})
@bp.route("/<anypath:project_path>/-/data/", methods=METHODS, defaults={"object_path": ""})
@bp.route("/<anypath:project_path>/-/data/<anypath:object_path>", methods=METHODS)
def by_path(project_path: str, object_path: str) -> ResponseReturnValue:
    return _dispatch(ProjectRef(path=project_path), object_path)


def _dispatch(ref: ProjectRef, path: str) -> ResponseReturnValue:
    # the path is UTF-8 (request_text checked it before any view)
    handler = {
        "HEAD": _head,
        "GET": _get,
        "PUT": _upload,
        "POST": _upload,
        "DELETE": _delete,
        "PROPFIND": webdav.propfind,
        "PROPPATCH": webdav.proppatch,
        "MKCOL": webdav.mkcol,
        "OPTIONS": webdav.options,
        "COPY": dav_copy.copy,
        "MOVE": dav_copy.move,
        "LOCK": dav_locks.lock,
        "UNLOCK": dav_locks.unlock,
    }.get(request.method)
    if handler is None:
        raise MethodNotAllowed(f"Method {request.method} is not supported here")
    return handler(ref, path)


def _object_headers(info: ObjectInfo) -> list[tuple[str, str]]:
    return [("ETag", info.etag), ("X-Checksum-MD5", info.md5), ("X-Object-Size", str(info.size))]


def _head(ref: ProjectRef, path: str) -> Response:
    info = services().registry.stat(credential_from(request), ref, path)
    headers = _object_headers(info)
    headers += [
        ("Content-Length", str(info.size)),
        ("Accept-Ranges", "bytes"),
        ("Last-Modified", format_datetime(info.created_at, usegmt=True)),
    ]
    return Response(status=200, headers=headers, mimetype="application/octet-stream")


def _streams_downloads(svc: Components) -> bool:
    """Proxy mode, or Basic credentials from a client that would re-send them to the bucket."""
    if svc.settings.download_mode == "proxy":
        return True
    if not carries_basic_auth(request):
        return False
    return not request.headers.get("User-Agent", "").startswith(_REDIRECT_SAFE_AGENTS)


def _get(ref: ProjectRef, path: str) -> ResponseReturnValue:
    if path == "badge.svg":  # reserved at the data root: GitLab badges link here
        return project_pages.badge(ref)
    if project_pages.wants_page():  # a browser: a folder's page, or an object's (never its bytes)
        return project_pages.page(ref, path)
    svc = services()
    registry, credential = svc.registry, credential_from(request)
    if _streams_downloads(svc):
        info, reader = registry.open(credential, ref, path)
        return ranged_response(request, info.size, reader, dict(_object_headers(info)))
    download = registry.download(credential, ref, path)
    # A relative Location (the local backend without REGISTRY_PUBLIC_URL) is resolved by every client.
    headers = _object_headers(download.info)
    headers += [("Location", download.url.url), ("Cache-Control", "no-store")]
    svc.metrics.redirects.inc()
    return Response(status=302, headers=headers)


def _upload(ref: ProjectRef, path: str) -> Response:
    overwrite = request.args.get("overwrite", "").lower() in ("1", "true", "yes")
    result = services().uploads.upload(
        credential_from(request),
        ref,
        path,
        request_chunks(request),
        overwrite=overwrite,
        declared_size=request.content_length,
    )
    status = 201 if result.created else 200
    if result.created:
        services().metrics.upload_bytes.inc(result.info.size)
    body = json.dumps({"path": result.info.path, "size": result.info.size, "md5": result.info.md5})
    return Response(body, status=status, headers=_object_headers(result.info), mimetype="application/json")


def _delete(ref: ProjectRef, path: str) -> Response:
    services().registry.delete(credential_from(request), ref, path.removesuffix("/"))
    return Response(status=204)
