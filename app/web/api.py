"""The JSON API `/api/v1` (first part): project registry info, object listing with cursor paging, batch
existence, signed download URLs, delete; marshmallow schemas, and the OpenAPI document made from them."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from app.errors import BadRequest
from app.model import ObjectInfo, ProjectRef, parse_size
from app.web import services
from app.web.credentials import credential_from

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_BATCH = 1000
_MD5 = validate.Regexp(r"^[0-9a-f]{32}$", error="not an md5 (32 lowercase hex digits)")


class ProjectSchema(Schema):
    id = fields.Integer(required=True)
    path = fields.String(required=True)
    used_bytes = fields.Integer(required=True)
    object_count = fields.Integer(required=True)
    quota_bytes = fields.Integer(required=True, metadata={"description": "0: unlimited"})
    last_upload = fields.DateTime(allow_none=True, required=True)


class ObjectSchema(Schema):
    path = fields.String(required=True)
    size = fields.Integer(required=True)
    md5 = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class ObjectPageSchema(Schema):
    objects = fields.List(fields.Nested(ObjectSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True, metadata={"description": "null: last page"})


class ListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    prefix = fields.String(load_default="")
    search = fields.String(load_default="", metadata={"description": "substring of the path"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    order_by = fields.String(load_default="path", validate=validate.OneOf(["path", "size", "created_at"]))
    sort = fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]))
    cursor = fields.String(load_default=None, allow_none=True)


class ExistsRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    paths = fields.List(
        fields.String(validate=validate.Length(min=1, max=1024)),
        load_default=list,
        validate=validate.Length(max=MAX_BATCH),
    )
    md5s = fields.List(
        fields.String(validate=_MD5), load_default=list, validate=validate.Length(max=MAX_BATCH)
    )


class ExistsResponseSchema(Schema):
    paths = fields.Dict(keys=fields.String(), values=fields.Boolean(), required=True)
    md5s = fields.Dict(keys=fields.String(), values=fields.Boolean(), required=True)


class PathQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    path = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class DownloadQuerySchema(PathQuerySchema):
    attachment = fields.Boolean(
        load_default=False, metadata={"description": "the bucket sends Content-Disposition: attachment"}
    )


class DownloadSchema(Schema):
    url = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    size = fields.Integer(required=True)
    md5 = fields.String(required=True)


class UploadRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    path = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    md5 = fields.String(load_default=None, allow_none=True, validate=_MD5)
    overwrite = fields.Boolean(load_default=False)


class UploadPartSchema(Schema):
    number = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    size = fields.Integer(required=True)
    url = fields.String(required=True, metadata={"description": "PUT these bytes here"})


class UploadSessionSchema(Schema):
    id = fields.String(required=True)
    path = fields.String(required=True)
    size = fields.Integer(required=True)
    md5 = fields.String(allow_none=True, required=True)
    expires_at = fields.DateTime(required=True)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(["parts", "gcs_resumable"]),
        metadata={
            "description": "parts: PUT each part to its URL; gcs_resumable: POST `url` with `headers`, "
            "then PUT the file to the session URI in the answer's Location header"
        },
    )
    part_size = fields.Integer(required=True)
    parts = fields.List(fields.Nested(UploadPartSchema), required=True)
    url = fields.String(allow_none=True, required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class UploadResultSchema(Schema):
    object = fields.Nested(ObjectSchema, required=True)
    created = fields.Boolean(required=True)


class ProjectUsageSchema(Schema):
    id = fields.Integer(required=True)
    path = fields.String(allow_none=True, required=True, metadata={"description": "null: no data yet"})
    used_bytes = fields.Integer(required=True)
    object_count = fields.Integer(required=True)
    quota_bytes = fields.Integer(required=True, metadata={"description": "0: unlimited"})
    quota_is_default = fields.Boolean(required=True)


class UsageQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))


class UsageSchema(Schema):
    projects = fields.List(fields.Nested(ProjectUsageSchema), required=True)


class QuotaRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    quota = fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "bytes, or a size such as 100GiB; 0: unlimited; null: back to the default",
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
            "nullable": True,
        },
    )


class ErrorSchema(Schema):
    error = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as e:
        first = next(iter(e.normalized_messages().items()))  # type: ignore[no-untyped-call]
        raise BadRequest(f"Invalid request: {first[0]}: {first[1]}") from None
    for name, value in loaded.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise BadRequest(f"Invalid request: {name}: contains a NUL character")
    return loaded


def _cursor(order_by: str, sort: str, last: ObjectInfo) -> str:
    """An opaque cursor: the ordering and the key of the last object of a page."""
    value: Any = {"path": None, "size": last.size, "created_at": last.created_at.isoformat()}[order_by]
    raw = json.dumps([order_by, sort, value, last.path], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _after(cursor: str | None, order_by: str, sort: str) -> tuple[Any, str] | None:
    """The key a cursor starts after; 400 for a cursor not made by this API for the same ordering."""
    if not cursor:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        made_for, made_sort, value, path = json.loads(raw)
        if (made_for, made_sort) != (order_by, sort) or not isinstance(path, str) or "\x00" in path:
            raise ValueError("another ordering")
        if order_by == "created_at":
            value = datetime.fromisoformat(value)
        elif order_by == "size" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("not a size")
    except (ValueError, TypeError):  # binascii.Error, UnicodeDecodeError, JSONDecodeError alike
        raise BadRequest("Invalid request: cursor: not a cursor from this API for this ordering") from None
    return value, path


def _absolute(url: str) -> str:
    """A URL API clients can use as is: the local backend's own are relative without REGISTRY_PUBLIC_URL."""
    return request.host_url.rstrip("/") + url if url.startswith("/") else url


@bp.get("/projects/<int:project_id>")
def project(project_id: int) -> Response:
    """Project registry info: usage, quota, object count, last upload."""
    stats = services().registry.stats(credential_from(request), ProjectRef(id=project_id))
    return jsonify(ProjectSchema().dump(stats))


@bp.get("/projects/<int:project_id>/objects")
def objects(project_id: int) -> Response:
    """Objects under a prefix, optionally containing a substring, by path, size or age; cursor paging."""
    query = _load(ListQuerySchema(), request.args.to_dict())
    order_by, sort = query["order_by"], query["sort"]
    page = services().registry.list_objects(
        credential_from(request),
        ProjectRef(id=project_id),
        prefix=query["prefix"],
        search=query["search"],
        limit=query["limit"] + 1,
        order_by=order_by,
        descending=sort == "desc",
        after=_after(query["cursor"], order_by, sort),
    )
    more = len(page) > query["limit"]
    page = page[: query["limit"]]
    next_cursor = _cursor(order_by, sort, page[-1]) if more else None
    return jsonify(ObjectPageSchema().dump({"objects": page, "next_cursor": next_cursor}))


@bp.post("/projects/<int:project_id>/objects/exists")
def exists(project_id: int) -> Response:
    """Batch existence of up to 1,000 paths and 1,000 md5s in one request."""
    body = _load(ExistsRequestSchema(), request.get_json(silent=True) or {})
    paths, md5s = services().registry.exists(
        credential_from(request), ProjectRef(id=project_id), paths=body["paths"], md5s=body["md5s"]
    )
    return jsonify({"paths": paths, "md5s": md5s})


@bp.get("/projects/<int:project_id>/objects/download")
def download(project_id: int) -> Response:
    """A signed URL that downloads the object straight from storage."""
    query = _load(DownloadQuerySchema(), request.args.to_dict())
    got = services().registry.download(
        credential_from(request), ProjectRef(id=project_id), query["path"], as_attachment=query["attachment"]
    )
    body = {
        "url": _absolute(got.url.url),
        "expires_at": got.url.expires_at,
        "size": got.info.size,
        "md5": got.info.md5,
    }
    return jsonify(DownloadSchema().dump(body))


@bp.delete("/projects/<int:project_id>/objects")
def delete(project_id: int) -> Response:
    """Delete an object (Maintainer)."""
    path = _load(PathQuerySchema(), request.args.to_dict())["path"]
    services().registry.delete(credential_from(request), ProjectRef(id=project_id), path)
    return Response(status=204)


@bp.post("/projects/<int:project_id>/uploads")
def start_upload(project_id: int) -> tuple[Response, int]:
    """Open a direct upload: signed URLs that take the file straight to storage."""
    body = _load(UploadRequestSchema(), request.get_json(silent=True) or {})
    session, direct = services().registry.start_upload(
        credential_from(request), ProjectRef(id=project_id), **body
    )
    dumped = UploadSessionSchema().dump(
        {
            "id": session.id,
            "path": session.path,
            "size": session.size,
            "md5": session.md5,
            "expires_at": session.expires_at,
            "kind": direct.kind,
            "part_size": direct.part_size,
            "parts": [replace(part, url=_absolute(part.url)) for part in direct.parts],
            "url": direct.url,
            "headers": direct.headers,
        }
    )
    return jsonify(dumped), 201


@bp.post("/projects/<int:project_id>/uploads/<session_id>/complete")
def complete_upload(project_id: int, session_id: str) -> tuple[Response, int]:
    """Verify the uploaded file (size, md5) and index it; 201 new, 200 identical object already there."""
    done = services().registry.complete_upload(
        credential_from(request), ProjectRef(id=project_id), session_id
    )
    return jsonify(UploadResultSchema().dump({"object": done.info, "created": done.created})), (
        201 if done.created else 200
    )


@bp.delete("/projects/<int:project_id>/uploads/<session_id>")
def abort_upload(project_id: int, session_id: str) -> Response:
    """Abort a direct upload and drop what it stored."""
    services().registry.abort_upload(credential_from(request), ProjectRef(id=project_id), session_id)
    return Response(status=204)


@bp.get("/admin/projects")
def usage() -> Response:
    """Admins: projects by storage used."""
    limit = _load(UsageQuerySchema(), request.args.to_dict())["limit"]
    projects = services().registry.usage(credential_from(request), limit=limit)
    return jsonify(UsageSchema().dump({"projects": projects}))


@bp.get("/admin/projects/<int:project_id>/quota")
def get_quota(project_id: int) -> Response:
    """Admins: a project's usage and quota."""
    return jsonify(ProjectUsageSchema().dump(services().registry.quota(credential_from(request), project_id)))


@bp.put("/admin/projects/<int:project_id>/quota")
def set_quota(project_id: int) -> Response:
    """Admins: set a project's own quota, or null for the default."""
    raw = _load(QuotaRequestSchema(), request.get_json(silent=True) or {})["quota"]
    if isinstance(raw, bool) or not isinstance(raw, int | str | None):
        raise BadRequest("Invalid request: quota: a number of bytes, a size such as 100GiB, or null")
    try:
        quota = None if raw is None else parse_size(str(raw))
    except ValueError as e:
        raise BadRequest(f"Invalid request: quota: {e}") from None
    done = services().registry.set_quota(credential_from(request), project_id, quota)
    return jsonify(ProjectUsageSchema().dump(done))


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of this API."""
    return jsonify(build_spec().to_dict())


def build_spec() -> APISpec:
    """OpenAPI 3 from the marshmallow schemas above."""
    spec = APISpec("GitLab Data Registry", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for schema in (
        ProjectSchema,
        ObjectSchema,
        ObjectPageSchema,
        ExistsRequestSchema,
        ExistsResponseSchema,
        DownloadSchema,
        UploadRequestSchema,
        UploadPartSchema,
        UploadSessionSchema,
        UploadResultSchema,
        ProjectUsageSchema,
        UsageSchema,
        QuotaRequestSchema,
        ErrorSchema,
    ):
        spec.components.schema(schema.__name__.removesuffix("Schema"), schema=schema)
    project_id = {"name": "project_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": "Error"}}}
        for code, text in (
            (400, "invalid request"),
            (401, "credential missing or invalid"),
            (403, "not allowed"),
            (404, "not found"),
            (429, "rate limited"),
            (503, "GitLab or storage down"),
        )
    }

    def ok(schema: str) -> dict[str, Any]:
        return {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}, **errors}

    path_query = {"in": "query", "schema": PathQuerySchema}
    spec.path(
        "/api/v1/projects/{project_id}",
        operations={
            "get": {
                "summary": "Project registry info",
                "parameters": [project_id],
                "responses": ok("Project"),
            }
        },
    )
    spec.path(
        "/api/v1/projects/{project_id}/objects",
        operations={
            "get": {
                "summary": "List objects",
                "parameters": [project_id, {"in": "query", "schema": ListQuerySchema}],
                "responses": ok("ObjectPage"),
            },
            "delete": {
                "summary": "Delete an object",
                "parameters": [project_id, path_query],
                "responses": {"204": {"description": "deleted"}, **errors},
            },
        },
    )
    spec.path(
        "/api/v1/projects/{project_id}/objects/exists",
        operations={
            "post": {
                "summary": "Batch existence",
                "parameters": [project_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "ExistsRequest"}},
                },
                "responses": ok("ExistsResponse"),
            }
        },
    )
    spec.path(
        "/api/v1/projects/{project_id}/objects/download",
        operations={
            "get": {
                "summary": "Signed download URL",
                "parameters": [project_id, {"in": "query", "schema": DownloadQuerySchema}],
                "responses": ok("Download"),
            }
        },
    )
    session_id = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
    stored = {
        status: {"description": text, "content": {"application/json": {"schema": "UploadResult"}}}
        for status, text in (("201", "stored"), ("200", "an identical object was already there"))
    }
    spec.path(
        "/api/v1/projects/{project_id}/uploads",
        operations={
            "post": {
                "summary": "Open a direct upload session",
                "parameters": [project_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "UploadRequest"}},
                },
                "responses": {
                    "201": {
                        "description": "session opened",
                        "content": {"application/json": {"schema": "UploadSession"}},
                    },
                    "409": errors["404"] | {"description": "a different object exists"},
                    "413": errors["404"] | {"description": "over quota or file-size limit"},
                    **errors,
                },
            }
        },
    )
    spec.path(
        "/api/v1/projects/{project_id}/uploads/{session_id}/complete",
        operations={
            "post": {
                "summary": "Complete a direct upload",
                "parameters": [project_id, session_id],
                "responses": {
                    **stored,
                    "409": errors["404"] | {"description": "not all bytes have arrived yet, or a conflict"},
                    "413": errors["404"] | {"description": "over quota"},
                    **errors,
                },
            }
        },
    )
    spec.path(
        "/api/v1/projects/{project_id}/uploads/{session_id}",
        operations={
            "delete": {
                "summary": "Abort a direct upload",
                "parameters": [project_id, session_id],
                "responses": {"204": {"description": "aborted"}, **errors},
            }
        },
    )
    spec.path(
        "/api/v1/admin/projects",
        operations={
            "get": {
                "summary": "Projects by storage used (GitLab administrators)",
                "parameters": [{"in": "query", "schema": UsageQuerySchema}],
                "responses": ok("Usage"),
            }
        },
    )
    spec.path(
        "/api/v1/admin/projects/{project_id}/quota",
        operations={
            "get": {
                "summary": "A project's usage and quota (GitLab administrators)",
                "parameters": [project_id],
                "responses": ok("ProjectUsage"),
            },
            "put": {
                "summary": "Set a project's quota (GitLab administrators)",
                "parameters": [project_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "QuotaRequest"}},
                },
                "responses": ok("ProjectUsage"),
            },
        },
    )
    return spec
