"""The JSON API's marshmallow schemas: what each request takes and each response carries (the OpenAPI
document is made from them)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

MAX_BATCH = 1000
MD5 = validate.Regexp(r"^[0-9a-f]{32}$", error="not an md5 (32 lowercase hex digits)")
# the examples the document shows, consistent across fields (one DVC object of ml/vision)
_PATH = "dvc/files/md5/d8/e8fca2dc0f896fd7cb4cb0031ba249"
_MD5_HEX = "d8e8fca2dc0f896fd7cb4cb0031ba249"
_AT = "2026-11-20T14:03:11+00:00"
_CURSOR = "WyJwYXRoIiwiYXNjIixudWxsLCJkdmMvZmlsZXMvbWQ1L2Q4L2U4ZmNhMmRjMGY4OTZmZDdjYjRjYjAwMzFiYTI0OSJd"


def about(description: str, example: Any) -> dict[str, Any]:
    """A field's metadata for the OpenAPI document: what it means (Markdown) and an example value."""
    return {"description": description, "example": example}


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
    id = fields.Integer(required=True, metadata=about("The project's numeric id in GitLab.", 42))
    path = fields.String(required=True, metadata=about("The project's full path in GitLab.", "ml/vision"))
    used_bytes = fields.Integer(
        required=True, metadata=about("Bytes stored, the trash included.", 1_288_490_188)
    )
    object_count = fields.Integer(
        required=True, metadata=about("Objects stored, not counting the trash.", 1532)
    )
    quota_bytes = fields.Integer(
        required=True, metadata=about("The quota in bytes; `0`: unlimited.", 10_737_418_240)
    )
    last_upload = fields.DateTime(
        allow_none=True,
        required=True,
        metadata=about("When the last object arrived; `null`: never.", _AT),
    )
    trash_bytes = fields.Integer(
        required=True,
        metadata=about("Bytes in the trash: restorable, and they count toward the quota.", 52_428_800),
    )
    trash_count = fields.Integer(required=True, metadata=about("Objects in the trash.", 12))


class ObjectSchema(Schema):
    path = fields.String(required=True, metadata=about("Its path in the project's registry.", _PATH))
    size = fields.Integer(required=True, metadata=about("Its size in bytes.", 1_048_576))
    md5 = fields.String(required=True, metadata=about("The md5 of its content, 32 hex digits.", _MD5_HEX))
    created_at = fields.DateTime(required=True, metadata=about("When it was stored.", _AT))


class ObjectPageSchema(Schema):
    objects = fields.List(
        fields.Nested(ObjectSchema),
        required=True,
        metadata={"description": "The objects, in the order asked for."},
    )
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata=about("Pass it as `cursor` for the next page; `null`: this is the last.", _CURSOR),
    )


class ListQuerySchema(RequestSchema):
    prefix = fields.String(
        load_default="",
        metadata=about("Only paths that start with this (`dvc/files/md5/`).", "dvc/files/md5/"),
    )
    search = fields.String(
        load_default="", metadata=about("Only paths that contain this substring.", "e8fca2")
    )
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=1000),
        metadata=about("At most this many objects on the page.", 2),
    )
    order_by = fields.String(
        load_default="path",
        validate=validate.OneOf(["path", "size", "created_at"]),
        metadata=about("Order by `path`, `size` or `created_at` (then path).", "path"),
    )
    sort = fields.String(
        load_default="asc",
        validate=validate.OneOf(["asc", "desc"]),
        metadata=about("`asc` (ascending) or `desc` (descending).", "asc"),
    )
    cursor = fields.String(
        load_default=None,
        allow_none=True,
        metadata=about("The `next_cursor` of the page before, with the same `order_by` and `sort`.", _CURSOR),
    )


class TrashedObjectSchema(ObjectSchema):
    trashed_at = fields.DateTime(
        required=True, metadata=about("When it was deleted.", "2026-11-25T09:30:00+00:00")
    )
    purge_at = fields.DateTime(
        required=True,
        metadata=about("When it is gone for good (a purge may come sooner).", "2026-12-25T09:30:00+00:00"),
    )


class TrashPageSchema(Schema):
    objects = fields.List(
        fields.Nested(TrashedObjectSchema),
        required=True,
        metadata={"description": "The deleted objects, in the order asked for."},
    )
    next_cursor = fields.String(
        allow_none=True,
        required=True,
        metadata=about("Pass it as `cursor` for the next page; `null`: this is the last.", _CURSOR),
    )


class RestoreRequestSchema(RequestSchema):
    """The objects to bring back from the trash."""

    paths = fields.List(
        fields.String(validate=validate.Length(min=1, max=1024)),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH),
        metadata=about("Paths in the trash; a `.dir` brings back the files it lists.", [_PATH]),
    )


class RestoreResultSchema(Schema):
    restored = fields.List(
        fields.Nested(ObjectSchema),
        required=True,
        metadata={"description": "The objects restored, the files of restored `.dir`s included."},
    )


class PurgeResultSchema(Schema):
    objects = fields.Integer(required=True, metadata=about("Objects deleted for good.", 12))
    bytes = fields.Integer(required=True, metadata=about("The room they held, free again.", 52_428_800))


class ExistsRequestSchema(RequestSchema):
    """Paths and md5s to look up (either list may be left out)."""

    paths = fields.List(
        fields.String(validate=validate.Length(min=1, max=1024)),
        load_default=list,
        validate=validate.Length(max=MAX_BATCH),
        metadata=about("Up to 1,000 paths.", [_PATH, "reports/summary.csv"]),
    )
    md5s = fields.List(
        fields.String(validate=MD5),
        load_default=list,
        validate=validate.Length(max=MAX_BATCH),
        metadata=about("Up to 1,000 md5s of content, whatever its path.", [_MD5_HEX]),
    )


class ExistsResponseSchema(Schema):
    paths = fields.Dict(
        keys=fields.String(),
        values=fields.Boolean(),
        required=True,
        metadata=about(
            "Each path asked for: `true` when an object is there.",
            {_PATH: True, "reports/summary.csv": False},
        ),
    )
    md5s = fields.Dict(
        keys=fields.String(),
        values=fields.Boolean(),
        required=True,
        metadata=about("Each md5 asked for: `true` when an object has that content.", {_MD5_HEX: True}),
    )


class PathQuerySchema(RequestSchema):
    path = fields.String(
        required=True, validate=validate.Length(min=1, max=1024), metadata=about("The object's path.", _PATH)
    )


class DownloadQuerySchema(PathQuerySchema):
    attachment = fields.Boolean(
        load_default=False,
        metadata=about("`true`: the bucket answers with `Content-Disposition: attachment`.", False),
    )


class DownloadSchema(Schema):
    url = fields.String(
        required=True,
        metadata=about(
            "A signed URL: `GET` it, no credential needed.",
            "https://storage.example.com/registry/42/" + _PATH + "?X-Amz-Expires=3600&X-Amz-Signature=5e1f…",
        ),
    )
    expires_at = fields.DateTime(
        required=True, metadata=about("When the URL stops working.", "2026-11-20T15:03:11+00:00")
    )
    size = fields.Integer(required=True, metadata=about("The object's size in bytes.", 1_048_576))
    md5 = fields.String(required=True, metadata=about("The md5 of its content.", _MD5_HEX))


class ProjectUsageSchema(Schema):
    id = fields.Integer(required=True, metadata=about("The project's numeric id in GitLab.", 42))
    path = fields.String(
        allow_none=True,
        required=True,
        metadata=about("The project's full path; `null`: it has no data yet.", "ml/vision"),
    )
    used_bytes = fields.Integer(
        required=True, metadata=about("Bytes stored, the trash included.", 1_288_490_188)
    )
    object_count = fields.Integer(required=True, metadata=about("Objects stored.", 1532))
    quota_bytes = fields.Integer(
        required=True, metadata=about("The quota in bytes; `0`: unlimited.", 10_737_418_240)
    )
    quota_is_default = fields.Boolean(
        required=True,
        metadata=about("`true`: the registry's default quota (`REGISTRY_DEFAULT_QUOTA`).", False),
    )
    trash_bytes = fields.Integer(required=True, metadata=about("Bytes in the trash.", 52_428_800))


class UsageQuerySchema(RequestSchema):
    limit = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=10_000),
        metadata=about("At most this many projects, the largest first.", 20),
    )


class UsageSchema(Schema):
    projects = fields.List(
        fields.Nested(ProjectUsageSchema), required=True, metadata={"description": "The projects."}
    )


class QuotaRequestSchema(RequestSchema):
    """The new quota."""

    quota = fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "Bytes, or a size such as `100GiB`; `0`: unlimited; `null`: back to the default.",
            "example": "100GiB",
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
            "nullable": True,
        },
    )


class ErrorSchema(Schema):
    """What every refusal answers: a code for programs and a message for people."""

    error = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata=about(
            "`code` (such as `not_found`) and `message` (one line).",
            {
                "code": "project_not_found",
                "message": "Project ml/vision not found, or it needs a GitLab token to read",
            },
        ),
    )
