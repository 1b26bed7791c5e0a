"""The S3 door `/<project>/-/s3` (and `/-/projects/<id>/s3`), path-style: the bucket is the first segment
of the data path. Routes, the per-credential rate limit, the dispatch of each request to its operation
(multipart ones to app.web.s3_multipart), and the door's own error handler (S3 XML, never JSON)."""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import re
from collections.abc import Callable

from flask import Blueprint, Response, request
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.errors import InvalidPath, RateLimited, RegistryError
from app.model.paths import ObjectPath
from app.model.projects import ProjectRef
from app.s3_errors import S3Error
from app.web import s3_buckets, s3_objects
from app.web.context import services
from app.web.credentials import client_address
from app.web.errors import http_error
from app.web.s3_auth import S3Request, access_key_of, authenticate
from app.web.s3_xml import http_error_response, registry_error_response

log = logging.getLogger(__name__)
bp = Blueprint("s3", __name__)
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]
_DOOR_PATH = re.compile(r"/-/(?:projects/\d+/)?s3(?:/|$)")
Handler = Callable[[ProjectRef, str, str, S3Request], Response]
# Sub-resources of S3's API the door does not serve (ACLs, policies, versions, tags, …): 501.
_UNSUPPORTED = frozenset(
    {  # one per line, as S3's API reference lists them
        "accelerate",
        "acl",
        "analytics",
        "attributes",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "tagging",
        "torrent",
        "versioning",
        "versions",
        "website",
    }
)


def by_id(project_id: int, bucket: str = "", key: str = "") -> Response:
    return _door(ProjectRef(id=project_id), bucket, key)


def by_path(project_path: str, bucket: str = "", key: str = "") -> Response:
    return _door(ProjectRef(path=project_path), bucket, key)


def _add_routes(prefix: str, endpoint: str, view: Callable[..., Response]) -> None:
    """The service (no bucket), a bucket (with and without a trailing slash) and an object. No rule has
    `defaults` (the view's own do): werkzeug redirects a URL to the sibling rule that has them."""
    for rule in (
        prefix,
        f"{prefix}/",
        f"{prefix}/<bucket>",
        f"{prefix}/<bucket>/",
        f"{prefix}/<bucket>/<anypath:key>",
    ):
        bp.add_url_rule(rule, endpoint, view, methods=METHODS)


_add_routes("/-/projects/<id:project_id>/s3", "by_id", by_id)
_add_routes("/<anypath:project_path>/-/s3", "by_path", by_path)


@bp.before_request
def limit_rate() -> None:
    """One token bucket per access key id (the token; the signature changes every request), or per client
    address without one; 503 SlowDown past it."""
    key_id = access_key_of(request)
    key = hashlib.sha256(key_id.encode()).hexdigest() if key_id else f"addr:{client_address()}"
    wait = services().limiter.take(key)
    if wait:
        raise RateLimited("Too many requests for this credential; slow down", retry_after=math.ceil(wait))


@bp.errorhandler(RegistryError)
def _registry_error(error: RegistryError) -> Response:
    if error.status == 413 or error.code in ("quota_exceeded", "file_too_large"):
        services().metrics.quota_refusals.labels(reason=error.code).inc()
    return registry_error_response(error, bucket_level=not (request.view_args or {}).get("key"))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return http_error_response(error)


@bp.app_errorhandler(MethodNotAllowed)
def _method_not_allowed(error: MethodNotAllowed) -> Response:
    """A method no door route takes (PROPFIND, PATCH, a made-up one) is refused by routing, before any
    blueprint's handler runs: on a door URL, S3's 405 MethodNotAllowed in XML, elsewhere the JSON one."""
    if _DOOR_PATH.search(request.path):
        return http_error_response(error)
    return http_error(error)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return registry_error_response(
        RegistryError("Internal error; the registry logged it"), bucket_level=False
    )


def _door(ref: ProjectRef, bucket: str, key: str) -> Response:
    if bucket:
        try:
            ObjectPath(bucket)
        except InvalidPath as e:
            raise S3Error("InvalidBucketName", e.message) from None
    auth = authenticate(request_ctx.request)  # the request itself: it is read ~15 times
    return _handler(request.method, bucket, key)(ref, bucket, key, auth)


def _handler(method: str, bucket: str, key: str) -> Handler:
    """The operation a request asks for, by method, level and sub-resource (query parameter)."""
    args = request.args
    unsupported = _UNSUPPORTED.intersection(args)
    if unsupported:
        return _not_implemented(f"?{sorted(unsupported)[0]}")
    if not bucket:
        return s3_buckets.list_buckets if method in ("GET", "HEAD") else _not_implemented(f"{method} /")
    if not key:
        if method == "GET" and "uploads" in args:
            return _multipart("list_multipart_uploads")
        if method == "POST" and "delete" in args:
            return s3_objects.delete_objects
        table: dict[str, Handler] = {
            "GET": s3_buckets.get_bucket_location if "location" in args else s3_buckets.list_objects,
            "HEAD": s3_buckets.head_bucket,
            "PUT": s3_buckets.create_bucket,
            "DELETE": s3_buckets.delete_bucket,
        }
        return table.get(method) or _not_implemented(f"{method} on a bucket")
    if "uploadId" in args:
        name = {
            "PUT": "upload_part_copy" if "x-amz-copy-source" in request.headers else "upload_part",
            "POST": "complete_multipart_upload",
            "DELETE": "abort_multipart_upload",
            "GET": "list_parts",
        }.get(method)
        return _multipart(name) if name else _not_implemented(f"{method} ?uploadId")
    if method == "POST":
        return _multipart("create_multipart_upload") if "uploads" in args else _not_implemented("POST object")
    if method == "PUT" and "x-amz-copy-source" in request.headers:
        return s3_objects.copy_object
    return {
        "GET": s3_objects.get_object,
        "HEAD": s3_objects.head_object,
        "PUT": s3_objects.put_object,
        "DELETE": s3_objects.delete_object,
    }[method]


def _multipart(name: str) -> Handler:
    """A multipart operation of app.web.s3_multipart, imported when first asked for; 501 without it."""
    try:
        module = importlib.import_module("app.web.s3_multipart")
    except ModuleNotFoundError as e:
        if e.name != "app.web.s3_multipart":
            raise
        return _not_implemented("multipart uploads")
    found: Handler | None = getattr(module, name, None)
    return found or _not_implemented(name)


def _not_implemented(what: str) -> Handler:
    def refuse(ref: ProjectRef, bucket: str, key: str, auth: S3Request) -> Response:
        raise S3Error("NotImplemented", f"The S3 door does not implement {what}", status=501)

    return refuse
