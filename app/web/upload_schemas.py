"""The JSON API's schemas of direct uploads: the file a session is opened for, the signed URLs that take
its bytes straight to storage, and the object `complete` indexes."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.web.schemas import MD5, JSONBoolean, ObjectSchema, RequestSchema, about

_MD5_OF_FILE = "9e107d9d372bb6826bd81d3542a419d6"
_BUCKET = "https://storage.example.com/registry/42/datasets/images.tar"


class UploadRequestSchema(RequestSchema):
    """The file to upload."""

    path = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1024),
        metadata=about("Where it goes in the project's registry.", "datasets/images.tar"),
    )
    size = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata=about("Its size in bytes.", 5_368_709_120),
    )
    md5 = fields.String(
        load_default=None,
        allow_none=True,
        validate=MD5,
        metadata=about("Its md5, checked by `complete`; `null`: not checked.", _MD5_OF_FILE),
    )
    overwrite = JSONBoolean(
        load_default=False,
        metadata=about("`true`: replace a different object at this path (else 409).", False),
    )


class UploadPartSchema(Schema):
    number = fields.Integer(required=True, metadata=about("Its number, from 1.", 1))
    offset = fields.Integer(required=True, metadata=about("Where it starts in the file.", 0))
    size = fields.Integer(required=True, metadata=about("Its length in bytes.", 104_857_600))
    url = fields.String(
        required=True,
        metadata=about(
            "`PUT` these bytes here.",
            _BUCKET + "?partNumber=1&uploadId=2~x&X-Amz-Signature=9c4b…",
        ),
    )


class UploadSessionSchema(Schema):
    id = fields.String(
        required=True,
        metadata=about("The session's id, for `complete` and abort.", "5f0c3a9e8b7d4c21a6e9f0b1c2d3e4f5"),
    )
    path = fields.String(required=True, metadata=about("Where the file goes.", "datasets/images.tar"))
    size = fields.Integer(required=True, metadata=about("Its size in bytes.", 5_368_709_120))
    md5 = fields.String(
        allow_none=True,
        required=True,
        metadata=about("The md5 `complete` checks; `null`: none.", _MD5_OF_FILE),
    )
    expires_at = fields.DateTime(
        required=True, metadata=about("When the URLs stop working.", "2026-11-21T14:03:11+00:00")
    )
    kind = fields.String(
        required=True,
        validate=validate.OneOf(["parts", "gcs_resumable"]),
        metadata=about(
            "`parts`: `PUT` each part to its URL; `gcs_resumable`: `POST` `url` with `headers`, "
            "then `PUT` the file to the session URI in the answer's `Location` header.",
            "parts",
        ),
    )
    part_size = fields.Integer(
        required=True, metadata=about("The size of every part but the last.", 104_857_600)
    )
    parts = fields.List(
        fields.Nested(UploadPartSchema),
        required=True,
        metadata={"description": "The parts, in order (`kind` `parts`; else empty)."},
    )
    url = fields.String(
        allow_none=True,
        required=True,
        metadata=about("The URL that opens a GCS resumable session; `null` for parts.", None),
    )
    headers = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata=about("Headers to send with that `POST`, exactly as given.", {}),
    )


class UploadResultSchema(Schema):
    object = fields.Nested(ObjectSchema, required=True, metadata={"description": "The object as indexed."})
    created = fields.Boolean(
        required=True,
        metadata=about("`true`: stored now; `false`: an identical object was already there.", True),
    )
