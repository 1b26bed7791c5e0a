"""The JSON API's marshmallow schemas: what each request takes and each response carries (the OpenAPI
document is made from them)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

MAX_BATCH = 1000
_MD5 = validate.Regexp(r"^[0-9a-f]{32}$", error="not an md5 (32 lowercase hex digits)")


class JSONBoolean(fields.Boolean):
    """true or false, nothing else: marshmallow's Boolean also takes 1, "yes", "on", "False"…, which
    in a JSON body is a client's mistake (overwrite: "no" must not mean anything by accident)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class RequestSchema(Schema):
    """What a client sends: an unknown field is a 400, not silently dropped."""

    class Meta:
        unknown = RAISE


class ProjectSchema(Schema):
    id = fields.Integer(required=True)
    path = fields.String(required=True)
    used_bytes = fields.Integer(required=True)
    object_count = fields.Integer(required=True)
    quota_bytes = fields.Integer(required=True, metadata={"description": "0: unlimited"})
    last_upload = fields.DateTime(allow_none=True, required=True)
    trash_bytes = fields.Integer(
        required=True, metadata={"description": "restorable; counts toward the quota"}
    )
    trash_count = fields.Integer(required=True)


class ObjectSchema(Schema):
    path = fields.String(required=True)
    size = fields.Integer(required=True)
    md5 = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class ObjectPageSchema(Schema):
    objects = fields.List(fields.Nested(ObjectSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True, metadata={"description": "null: last page"})


class ListQuerySchema(RequestSchema):
    prefix = fields.String(load_default="")
    search = fields.String(load_default="", metadata={"description": "substring of the path"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    order_by = fields.String(load_default="path", validate=validate.OneOf(["path", "size", "created_at"]))
    sort = fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]))
    cursor = fields.String(load_default=None, allow_none=True)


class TrashedObjectSchema(ObjectSchema):
    trashed_at = fields.DateTime(required=True)
    purge_at = fields.DateTime(required=True, metadata={"description": "when it is gone for good"})


class TrashPageSchema(Schema):
    objects = fields.List(fields.Nested(TrashedObjectSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True, metadata={"description": "null: last page"})


class RestoreRequestSchema(RequestSchema):
    paths = fields.List(
        fields.String(validate=validate.Length(min=1, max=1024)),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH),
        metadata={"description": "a .dir brings back the files it lists"},
    )


class RestoreResultSchema(Schema):
    restored = fields.List(fields.Nested(ObjectSchema), required=True)


class PurgeResultSchema(Schema):
    objects = fields.Integer(required=True, metadata={"description": "objects deleted for good"})
    bytes = fields.Integer(required=True, metadata={"description": "the room they held, free again"})


class ExistsRequestSchema(RequestSchema):
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


class PathQuerySchema(RequestSchema):
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


class UploadRequestSchema(RequestSchema):
    path = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    md5 = fields.String(load_default=None, allow_none=True, validate=_MD5)
    overwrite = JSONBoolean(load_default=False)


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
    trash_bytes = fields.Integer(required=True)


class UsageQuerySchema(RequestSchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10_000))


class UsageSchema(Schema):
    projects = fields.List(fields.Nested(ProjectUsageSchema), required=True)


class QuotaRequestSchema(RequestSchema):
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


class WhoamiQuerySchema(Schema):
    project = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1024),
        metadata={"description": "a project's numeric id or full path (ml/vision)"},
    )


class DecisionSchema(Schema):
    allowed = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, required=True, metadata={"description": "why not, when not"})


class CredentialInfoSchema(Schema):
    kind = fields.String(
        required=True, metadata={"description": "access token, OAuth token, deploy token, …"}
    )
    user_id = fields.Integer(allow_none=True, required=True)
    scopes = fields.List(fields.String(), required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    job_project_id = fields.Integer(allow_none=True, required=True)


class WhoamiSchema(Schema):
    credential = fields.Nested(
        CredentialInfoSchema, allow_none=True, required=True, metadata={"description": "null: anonymous"}
    )
    project = fields.Dict(
        allow_none=True, required=True, metadata={"description": "id and path, when readable"}
    )
    role = fields.String(allow_none=True, required=True)
    access = fields.Dict(
        keys=fields.String(), values=fields.Nested(DecisionSchema), required=True
    )  # read, write, delete
    server_time = fields.DateTime(required=True)
