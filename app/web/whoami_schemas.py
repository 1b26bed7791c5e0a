"""The whoami answer's schemas: who a credential is and what it may do on a project (doctor reads it)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.web.schemas import about


class WhoamiQuerySchema(Schema):
    project = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1024),
        metadata=about("A project's numeric id or full path.", "ml/vision"),
    )


class DecisionSchema(Schema):
    allowed = fields.Boolean(required=True, metadata=about("Whether the credential may do it.", False))
    reason = fields.String(
        allow_none=True,
        required=True,
        metadata=about(
            "Why not, in words a person can act on; `null` when allowed.",
            "writing needs the Developer role or higher; you are Reporter",
        ),
    )


class CredentialInfoSchema(Schema):
    kind = fields.String(
        required=True,
        metadata=about(
            "What the credential is: access token, OAuth token, deploy token, CI job token, CI ID token.",
            "access token",
        ),
    )
    user_id = fields.Integer(
        allow_none=True,
        required=True,
        metadata=about("The GitLab user the credential acts for; `null` for a deploy token.", 4),
    )
    username = fields.String(
        allow_none=True,
        required=True,
        metadata=about("That user's GitLab username (a deploy token's own); `null` when unknown.", "alice"),
    )
    scopes = fields.List(
        fields.String(), required=True, metadata=about("The token's scopes, as GitLab lists them.", ["api"])
    )
    expires_at = fields.DateTime(
        allow_none=True,
        required=True,
        metadata=about(
            "When the token expires; `null` when it does not (a CI job token ends with its job).",
            "2027-03-01T00:00:00+00:00",
        ),
    )
    job_project_id = fields.Integer(
        allow_none=True,
        required=True,
        metadata=about("For a CI job token or ID token: the project whose job it is; else `null`.", None),
    )
    verified = fields.Boolean(
        required=True,
        metadata=about("`false`: the registry could not check the credential at all.", True),
    )
    unverified_reason = fields.String(
        allow_none=True,
        required=True,
        metadata=about(
            "Why it could not be checked (a deploy token on a registry without a service token); "
            "`null` when checked.",
            None,
        ),
    )


class WhoamiSchema(Schema):
    credential = fields.Nested(
        CredentialInfoSchema,
        allow_none=True,
        required=True,
        metadata={"description": "Who the credential is; `null`: anonymous."},
    )
    project = fields.Dict(
        allow_none=True,
        required=True,
        metadata=about(
            "The project's `id` and `path`, when the credential may read it; else `null`.",
            {"id": 42, "path": "ml/vision"},
        ),
    )
    role = fields.String(
        allow_none=True,
        required=True,
        metadata=about("The credential's role in the project, when it has one.", "Reporter"),
    )
    access = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(DecisionSchema),
        required=True,
        metadata=about(
            "For `read`, `write` and `delete`: whether it is allowed, and why not.",
            {
                "read": {"allowed": True, "reason": None},
                "write": {
                    "allowed": False,
                    "reason": "writing needs the Developer role or higher; you are Reporter",
                },
                "delete": {
                    "allowed": False,
                    "reason": "deleting needs the Maintainer role or higher; you are Reporter",
                },
            },
        ),
    )
    server_time = fields.DateTime(
        required=True,
        metadata=about("The registry's clock, to tell clock skew.", "2026-11-20T14:03:11+00:00"),
    )
