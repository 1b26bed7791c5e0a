"""The data plane `/<project>/-/data/<path>` (and `/-/projects/<id>/data/<path>`): HEAD, GET, PUT/POST,
DELETE for DVC's http remote and curl."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Blueprint, Response, json, request
from flask.typing import ResponseReturnValue

from app.components import Components
from app.errors import BadRequest, MethodNotAllowed
from app.model.objects import ObjectInfo
from app.model.paths import content_type
from app.model.projects import ProjectRef
from app.web import dav_copy, dav_locks, project_pages, webdav
from app.web.conditional import http_date, is_conditional, preconditions, range_holds, write_condition
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


@bp.before_app_request
def server_wide_options() -> Response | None:
    """`OPTIONS *` (RFC 9110 9.3.7: what the server supports, about no resource): answered as OPTIONS on
    the data plane is, Allow and DAV included. Its request target is no path, so no route matches it."""
    if request.method == "OPTIONS" and request.environ.get("PATH_INFO") == "*":
        return webdav.options(ProjectRef(), "")
    return None


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
    """The validators and checksums every answer about a version carries (a 304 included)."""
    return [
        ("ETag", info.etag),
        ("X-Checksum-MD5", info.md5),
        ("X-Object-Size", str(info.size)),
        ("Last-Modified", http_date(info.created_at)),
    ]


def _head(ref: ProjectRef, path: str) -> Response:
    info = services().registry.stat(credential_from(request), ref, path)
    headers = _object_headers(info)
    not_modified = preconditions(request, info.md5, info.created_at, headers)
    if not_modified is not None:
        return not_modified
    headers += [("Content-Length", str(info.size)), ("Accept-Ranges", "bytes")]
    return Response(status=200, headers=headers, content_type=content_type(info.path))


def _streams_downloads(svc: Components) -> bool:
    """Proxy mode, or Basic credentials from a client that would re-send them to the bucket (any size)."""
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
        return _stream(ref, path)
    if svc.settings.download_mode == "auto":
        # the size comes from the index: a small object costs the client one round trip instead of two
        info, reader = registry.open(credential, ref, path)
        if info.size < svc.settings.download_stream_below:
            return _stream(ref, path, opened=(info, reader))
    download = registry.download(credential, ref, path)
    info = download.info
    if is_conditional(request):  # from the index, before any redirect: a 304 costs no round trip
        not_modified = preconditions(request, info.md5, info.created_at, _object_headers(info))
        if not_modified is not None:
            return not_modified
        if not range_holds(request, info.md5, info.created_at):
            return _stream(ref, path, ranged=False)  # the bucket would serve a range of it: 200 here
    # A relative Location (the local backend without REGISTRY_PUBLIC_URL) is resolved by every client.
    headers = _object_headers(info)
    headers += [("Location", download.url.url), ("Cache-Control", "no-store")]
    svc.metrics.redirects.inc()
    return Response(status=302, headers=headers)


def _stream(
    ref: ProjectRef,
    path: str,
    *,
    ranged: bool = True,
    opened: tuple[ObjectInfo, Callable[[int, int], Iterator[bytes]]] | None = None,
) -> Response:
    """The object's bytes through the app: 200, 206 (a range that still fits its version), 304 or 412.
    The bucket is read lazily and closed when the client hangs up (gunicorn closes the iterator)."""
    info, reader = opened or services().registry.open(credential_from(request), ref, path)
    headers = _object_headers(info)
    not_modified = preconditions(request, info.md5, info.created_at, headers)
    if not_modified is not None:
        return not_modified
    ranged = ranged and range_holds(request, info.md5, info.created_at)
    return ranged_response(
        request, info.size, reader, dict(headers), content_type=content_type(info.path), ranged=ranged
    )


def _upload(ref: ProjectRef, path: str) -> Response:
    # RFC 9110 14.5: a partial PUT must not be stored as the whole object
    if "Content-Range" in request.headers:
        raise BadRequest("Content-Range on a PUT is not supported: send the whole object")
    dav_locks.check_lock(ref, path)  # 423 on a locked path without its token, 412 when If fails
    # a different object at the path is replaced (its version kept in the trash); ?overwrite=true, which
    # asked for that before, is still accepted and means the same
    result = services().uploads.upload(
        credential_from(request),
        ref,
        path,
        request_chunks(request),
        condition=write_condition(request),
        declared_size=request.content_length,
    )
    status = 201 if result.created else 200
    if result.created:
        services().metrics.upload_bytes.inc(result.info.size)
    # rclone's owncloud/nextcloud vendors send the file's mtime; listings show it until the next PUT
    oc_mtime = request.headers.get("X-OC-Mtime")
    headers = _object_headers(result.info)
    if services().registry.dav.uploaded(result.info, oc_mtime, created=result.created):
        headers.append(("X-OC-Mtime", "accepted"))
    body = json.dumps({"path": result.info.path, "size": result.info.size, "md5": result.info.md5})
    return Response(body, status=status, headers=headers, mimetype="application/json")


def _delete(ref: ProjectRef, path: str) -> Response:
    dav_locks.check_lock(ref, path, members=True)
    services().registry.delete(credential_from(request), ref, path.removesuffix("/"))
    return Response(status=204)
