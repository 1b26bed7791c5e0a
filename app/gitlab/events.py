"""GitLab hook deliveries: the secret and signature checks, and the events read from a payload (system
hooks on self-managed GitLab; group and project webhooks: project, push and merge request events). No
I/O here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from app.errors import AuthenticationRequired, BadRequest
from app.model.projects import PENDING_DELETION
from app.validation import load_or_400

SIGNATURE_TOLERANCE = 300  # seconds between GitLab signing a delivery and us checking it
_PLAIN_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}")
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")  # SHA-1, or SHA-256 repositories
_NO_COMMIT = re.compile(r"^0+$")  # `after` of a deleted branch
# merge request actions that bring a new last commit to check (not close, merge, approval…)
CHECKED_MR_ACTIONS = frozenset({"open", "reopen", "update"})
# a project, group or user path: the index keeps up to 1,024 characters, and no control character
_PATH = validate.And(
    validate.Length(min=1, max=1024),
    validate.Regexp(r"[^\x00-\x1f\x7f]*\Z", error="contains a control character"),
)


def check_token(given: str | None, secret: str) -> None:
    """X-Gitlab-Token against the configured secret, in constant time; 401 otherwise."""
    if given is None or not hmac.compare_digest(given.encode(), secret.encode()):
        raise AuthenticationRequired("Hook secret token missing or wrong (X-Gitlab-Token)")


def check_signature(headers: Mapping[str, str], body: bytes, signing_secret: str, now: float) -> None:
    """The Standard Webhooks signature GitLab sends with a signing token (header names in lower case):
    `webhook-signature` carries `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`;
    401 when absent, stale or wrong."""
    delivery, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    if not delivery or not timestamp.isdigit() or not signatures:
        raise AuthenticationRequired(
            "Hook signature missing (webhook-id, webhook-timestamp, webhook-signature)"
        )
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE:
        raise AuthenticationRequired("Hook signature too old or from the future (webhook-timestamp)")
    try:
        key = base64.b64decode(signing_secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise AuthenticationRequired("Hook signing secret is not base64") from None
    signed = f"{delivery}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for signature in signatures:
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return
    raise AuthenticationRequired("Hook signature does not match (webhook-signature)")


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """What identifies a delivery across GitLab's retries and resends (header names in lower case): the
    header itself when it is up to 128 printable ASCII characters (GitLab sends UUIDs), else its sha256,
    so that any value is kept whole (never cut to the column's 128) and a NUL never reaches the database."""
    given = headers.get("idempotency-key") or headers.get("webhook-id") or headers.get("x-gitlab-event-uuid")
    if given is None or _PLAIN_DELIVERY_ID.fullmatch(given):
        return given
    return "sha256:" + hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class HookEvent:
    """The fields of a hook payload the registry acts on."""

    name: str
    project_id: int | None = None
    path: str | None = None
    old_path: str | None = None  # project_transfer, project_rename, group_rename, user_rename
    sha: str | None = None  # push (the branch's new head; None: deleted) and merge_request (last commit)
    ref: str | None = None  # push: the branch; merge_request: its source branch

    @property
    def pending_deletion(self) -> bool:
        """A rename GitLab makes when it marks a project for (delayed) deletion."""
        return self.path is not None and PENDING_DELETION.search(self.path) is not None


class _EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_name = fields.String(validate=validate.Length(min=1, max=64))
    object_kind = fields.String(validate=validate.Length(min=1, max=64))  # webhooks, newer system hooks
    project_id = fields.Integer(strict=True, validate=validate.Range(min=1, max=2**63 - 1))
    path_with_namespace = fields.String(validate=_PATH)
    old_path_with_namespace = fields.String(validate=_PATH)
    full_path = fields.String(validate=_PATH)  # group_rename
    old_full_path = fields.String(validate=_PATH)
    username = fields.String(validate=_PATH)  # user_rename
    old_username = fields.String(validate=_PATH)


_NEEDS_PROJECT = {"project_destroy", "project_rename", "project_transfer"}
_NEEDS = {
    **{name: ("project_id", "path_with_namespace") for name in _NEEDS_PROJECT},
    "group_rename": ("full_path", "old_full_path"),
    "user_rename": ("username", "old_username"),
}


class _PushSchema(Schema):
    """A push: system hook (`event_name: push`) and webhook (`object_kind: push` too) alike."""

    class Meta:
        unknown = EXCLUDE

    project_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**63 - 1))
    after = fields.String(required=True, validate=validate.Regexp(_SHA, error="not a commit sha"))
    ref = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class _CommitSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Regexp(_SHA, error="not a commit sha"))


class _MergeRequestSchema(Schema):
    """`object_attributes` of a merge request event (webhook and system hook alike)."""

    class Meta:
        unknown = EXCLUDE

    action = fields.String(load_default=None, validate=validate.Length(max=64))
    source_project_id = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=2**63 - 1)
    )
    source_branch = fields.String(load_default=None, validate=validate.Length(min=1, max=1024))
    last_commit = fields.Nested(_CommitSchema, load_default=None, allow_none=True)


def _push(payload: dict[str, Any]) -> HookEvent:
    data = load_or_400(_PushSchema(), payload, what="Hook payload invalid: push")
    after, ref = data["after"], data["ref"]
    sha = None if _NO_COMMIT.match(after) else after
    return HookEvent("push", project_id=data["project_id"], sha=sha, ref=ref.removeprefix("refs/heads/"))


def _merge_request(payload: dict[str, Any]) -> HookEvent:
    attributes = payload.get("object_attributes")
    if not isinstance(attributes, dict):
        raise BadRequest("Hook payload invalid: merge_request without object_attributes")
    data = load_or_400(_MergeRequestSchema(), attributes, what="Hook payload invalid: object_attributes")
    last = data["last_commit"]
    checked = data["action"] in CHECKED_MR_ACTIONS and last is not None
    return HookEvent(
        "merge_request",
        project_id=data["source_project_id"],  # the last commit lives in the source project
        sha=last["id"] if checked else None,
        ref=data["source_branch"],
    )


def parse_event(payload: Any) -> HookEvent:
    """The event in a JSON payload (named by `event_name`, else by `object_kind`); 400 naming the field
    when an event we act on lacks what we need."""
    if not isinstance(payload, dict):
        raise BadRequest("Hook payload is not a JSON object")
    data = load_or_400(_EventSchema(), payload, what="Hook payload invalid")
    name = data.get("event_name") or data.get("object_kind")
    if name is None:
        raise BadRequest("Hook payload invalid: neither event_name nor object_kind")
    if name == "push":
        return _push(payload)
    if name == "merge_request":
        return _merge_request(payload)
    missing = [field for field in _NEEDS.get(name, ()) if field not in data]
    if missing:
        raise BadRequest(f"Hook payload invalid: {name} without {missing[0]}")
    if name == "group_rename":
        return HookEvent(name, path=data["full_path"], old_path=data["old_full_path"])
    if name == "user_rename":
        return HookEvent(name, path=data["username"], old_path=data["old_username"])
    return HookEvent(
        name,
        project_id=data.get("project_id"),
        path=data.get("path_with_namespace"),
        old_path=data.get("old_path_with_namespace"),
    )
