"""`POST /-/hooks/gitlab` with the payloads GitLab's documentation prints (system hooks, and the project
events of group webhooks): secret first, signature, deduplication, and what each event does."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import TOKENS, bearer
from tests.e2e.gitlab_hooks import merge_request_payload, push_payload

SECRET = "hook-secret-0123456789"
SIGNING = "whsec_" + base64.b64encode(b"k" * 32).decode()

# doc/administration/system_hooks.md, "Hooks request example" (project_id 73 → 101 here, a seeded project)
PROJECT_DESTROY = {
    "created_at": "2012-07-21T07:30:58Z",
    "updated_at": "2012-07-21T07:38:22Z",
    "event_name": "project_destroy",
    "name": "Underscore",
    "owner_email": "johnsmith@example.com",
    "owner_name": "John Smith",
    "owners": [{"name": "John", "email": "user1@example.com"}],
    "path": "underscore",
    "path_with_namespace": "jsmith/underscore",
    "project_id": 73,
    "project_namespace_id": 23,
    "project_visibility": "internal",
}
PROJECT_RENAME = {
    "created_at": "2012-07-21T07:30:58Z",
    "updated_at": "2012-07-21T07:38:22Z",
    "event_name": "project_rename",
    "name": "Underscore",
    "path": "underscore",
    "path_with_namespace": "jsmith/underscore",
    "project_id": 73,
    "owner_name": "John Smith",
    "owner_email": "johnsmith@example.com",
    "owners": [{"name": "John", "email": "user1@example.com"}],
    "project_namespace_id": 23,
    "project_visibility": "internal",
    "old_path_with_namespace": "jsmith/overscore",
}
PROJECT_TRANSFER = {
    **PROJECT_RENAME,
    "event_name": "project_transfer",
    "path_with_namespace": "scores/underscore",
}
GROUP_RENAME = {
    "event_name": "group_rename",
    "created_at": "2017-10-30T15:09:00Z",
    "updated_at": "2017-11-01T10:23:52Z",
    "name": "Better Name",
    "path": "better-name",
    "full_path": "parent-group/better-name",
    "group_id": 64,
    "old_path": "old-name",
    "old_full_path": "parent-group/old-name",
}
USER_RENAME = {
    "event_name": "user_rename",
    "created_at": "2017-11-01T11:21:04Z",
    "updated_at": "2017-11-01T14:04:47Z",
    "name": "new-name",
    "email": "best-email@example.tld",
    "user_id": 58,
    "username": "new-exciting-name",
    "old_username": "old-boring-name",
}
USER_CREATE = {
    "created_at": "2012-07-21T07:44:07Z",
    "updated_at": "2012-07-21T07:38:22Z",
    "email": "js@gitlabhq.com",
    "event_name": "user_create",
    "name": "John Smith",
    "username": "js",
    "user_id": 41,
}
# doc/user/project/integrations/webhook_events.md, "Project events" (group webhooks; X-Gitlab-Event:
# Project Hook)
GROUP_HOOK_PROJECT_DESTROY = {
    "event_name": "project_destroy",
    "created_at": "2025-07-02T15:40:09Z",
    "updated_at": "2025-07-02T15:42:04Z",
    "name": "rspec",
    "path": "rspec",
    "path_with_namespace": "flant-development/agriculture/rspec",
    "project_id": 28,
    "project_namespace_id": 1130,
    "owners": [{"name": "Administrator", "email": "[REDACTED]"}],
    "project_visibility": "private",
}


def for_project(payload: dict[str, Any], project_id: int, path: str | None = None) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    changed["project_id"] = project_id
    if path is not None:
        changed["path_with_namespace"] = path
    return changed


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(webhook_secret=SECRET, download_mode="redirect")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    for project in ("ml/vision", "ml/pipeline"):
        put = client.put(f"/{project}/-/data/model.bin", data=b"weights", headers=bearer("developer"))
        assert put.status_code == 201
    return client


def deliver(
    client: FlaskClient,
    payload: Any,
    *,
    token: str | None = SECRET,
    event: str = "System Hook",
    key: str | None = None,
    extra: dict[str, str] | None = None,
) -> Any:
    headers = {"X-Gitlab-Event": event, **(extra or {})}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    if key is not None:
        headers["Idempotency-Key"] = key
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/-/hooks/gitlab", data=body, headers=headers, content_type="application/json")


def state(app: Flask, project_id: int) -> str | None:
    return app.extensions["data_registry"].lifecycle.state(project_id)


@pytest.mark.parametrize(
    ("payload", "event"),
    [(PROJECT_DESTROY, "System Hook"), (GROUP_HOOK_PROJECT_DESTROY, "Project Hook")],
)
def test_project_destroy_stops_serving_at_once(
    client: FlaskClient, app: Flask, payload: dict[str, Any], event: str
) -> None:
    answer = deliver(client, for_project(payload, 101, "ml/vision"), event=event, key="delivery-1")
    assert answer.status_code == 200 and answer.json["outcome"] == "deletion queued"
    assert state(app, 101) == "deleting"
    read = client.get("/ml/vision/-/data/model.bin", headers=bearer("developer"))
    assert read.status_code == 404 and "was deleted" in read.json["error"]["message"]
    write = client.put("/ml/vision/-/data/new.bin", data=b"x", headers=bearer("developer"))
    assert write.status_code == 404 and write.json["error"]["code"] == "project_deleted"
    assert "Project ml/vision was deleted" in write.status
    listing = client.get("/api/v1/projects/101/objects", headers=bearer("developer"))
    assert listing.status_code == 404
    other = client.get("/ml/pipeline/-/data/model.bin", headers=bearer("developer"), follow_redirects=True)
    assert other.data == b"weights"  # nothing of another project is touched


def test_the_same_delivery_twice_is_one_deletion(client: FlaskClient, app: Flask) -> None:
    payload = for_project(PROJECT_DESTROY, 101)
    assert deliver(client, payload, key="same").json["outcome"] == "deletion queued"
    assert deliver(client, payload, key="same").json["outcome"] == "duplicate"
    assert deliver(client, payload, key="resent-by-hand").json["outcome"] == "already deleted"
    lifecycle = app.extensions["data_registry"].lifecycle
    assert lifecycle.backlog() == 1
    assert lifecycle.claim_deletion(60).project_id == 101
    assert lifecycle.claim_deletion(60) is None  # claimed once


@pytest.mark.parametrize("token", [None, "wrong", SECRET + "x", ""])
def test_wrong_or_missing_secret_does_nothing(client: FlaskClient, app: Flask, token: str | None) -> None:
    answer = deliver(client, for_project(PROJECT_DESTROY, 101), token=token)
    assert answer.status_code == 401 and "X-Gitlab-Token" in answer.json["error"]["message"]
    assert state(app, 101) == "active"
    assert client.get("/ml/vision/-/data/model.bin", headers=bearer("developer")).status_code == 302


def test_the_secret_is_checked_before_the_body(client: FlaskClient) -> None:
    assert deliver(client, b"{not json", token="wrong").status_code == 401
    assert deliver(client, b"{not json").status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2],
        {"project_id": 101},
        {"event_name": "project_destroy"},
        {"event_name": "project_destroy", "project_id": "101"},
        {"event_name": "group_rename", "full_path": "a"},
    ],
)
def test_malformed_payloads(client: FlaskClient, app: Flask, payload: Any) -> None:
    answer = deliver(client, payload)
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith("Hook payload")
    assert state(app, 101) == "active"


def test_other_events_are_acknowledged_and_ignored(client: FlaskClient, app: Flask) -> None:
    for payload in (USER_CREATE, {**for_project(PROJECT_DESTROY, 101), "event_name": "project_update"}):
        answer = deliver(client, payload)
        assert answer.status_code == 200 and answer.json["outcome"] == "ignored"
    assert state(app, 101) == "active"


def test_renames_update_the_cached_paths(client: FlaskClient, app: Flask) -> None:
    index = app.extensions["data_registry"].index
    assert deliver(client, for_project(PROJECT_RENAME, 101, "ml/vision-2")).json["outcome"] == "path updated"
    assert index.project(101).path == "ml/vision-2"
    assert deliver(client, for_project(PROJECT_TRANSFER, 101, "ml/deep/vision-2")).status_code == 200
    assert index.project(101).path == "ml/deep/vision-2"
    group = {**GROUP_RENAME, "full_path": "ai", "old_full_path": "ml"}
    assert deliver(client, group).json["outcome"] == "2 paths updated"
    assert sorted(index.project(i).path for i in (101, 106)) == ["ai/deep/vision-2", "ai/pipeline"]
    user = {**USER_RENAME, "username": "ml2", "old_username": "ai"}
    assert deliver(client, user).json["outcome"] == "2 paths updated"
    assert deliver(client, GROUP_RENAME).json["outcome"] == "0 paths updated"
    pending = for_project(PROJECT_RENAME, 106, "ml/pipeline-deletion_scheduled-106")
    assert deliver(client, pending).json["outcome"] == "pending deletion"
    assert state(app, 106) == "active"  # marked for deletion in GitLab: may still be restored


def signed(
    body: bytes, *, delivery: str = "msg_1", at: float | None = None, key: bytes = b"k" * 32
) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    mac = hmac.new(key, f"{delivery}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": delivery,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def test_webhook_signature(make_app: Callable[..., Flask]) -> None:
    app = make_app(webhook_secret=SECRET, webhook_signing_secret=SIGNING)
    client = app.test_client()
    body = json.dumps(for_project(PROJECT_DESTROY, 101)).encode()
    assert deliver(client, body).status_code == 401  # signature required once configured
    assert deliver(client, body, extra=signed(body, key=b"x" * 32)).status_code == 401
    assert deliver(client, body, extra=signed(body, at=time.time() - 3600)).status_code == 401
    tampered = body.replace(b"101", b"102")
    assert deliver(client, tampered, extra=signed(body)).status_code == 401
    assert state(app, 101) is None
    answer = deliver(client, body, extra=signed(body))
    assert answer.status_code == 200 and answer.json["outcome"] == "deletion queued"
    again = deliver(client, body, extra=signed(body))  # webhook-id dedupes like Idempotency-Key
    assert again.json["outcome"] == "duplicate"


def test_hooks_off_without_a_secret(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    answer = deliver(client, PROJECT_DESTROY)
    assert answer.status_code == 404 and "REGISTRY_WEBHOOK_SECRET" in answer.json["error"]["message"]


def test_the_secret_never_reaches_the_log(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    deliver(client, for_project(PROJECT_DESTROY, 101))
    deliver(client, for_project(PROJECT_DESTROY, 101), token="wrong-" + SECRET)
    assert SECRET not in caplog.text


# doc/administration/system_hooks.md, "Events for member approval in subscription": object_kind, no event_name
MEMBER_APPROVAL = {
    "object_kind": "gitlab_subscription_member_approval",
    "action": "enqueue",
    "object_attributes": {"new_access_level": 30, "old_access_level": 10, "existing_member_id": 123},
    "user_id": 42,
    "requested_by_user_id": 99,
    "promotion_namespace_id": 789,
    "created_at": "2025-04-10T14:00:00Z",
    "updated_at": "2025-04-10T14:05:00Z",
}
SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


@pytest.mark.parametrize(
    ("payload", "event"),
    [
        (merge_request_payload(101, "ml/vision", SHA), "Merge Request Hook"),
        (merge_request_payload(101, "ml/vision", SHA, action="merge"), "Merge Request Hook"),
        (merge_request_payload(101, "ml/vision", SHA, system=True), "System Hook"),
        (push_payload(101, "ml/vision", SHA), "Push Hook"),
        (push_payload(101, "ml/vision", SHA, system=True), "System Hook"),
        (push_payload(101, "ml/vision", "0" * 40), "Push Hook"),
        (MEMBER_APPROVAL, "System Hook"),
        ({"object_kind": "pipeline", "object_attributes": {"id": 31, "status": "success"}}, "Pipeline Hook"),
    ],
)
def test_webhook_payloads_without_event_name_are_answered(
    client: FlaskClient, app: Flask, payload: dict[str, Any], event: str
) -> None:
    """GitLab's merge request webhook carries `object_kind` and no `event_name`: a 2xx like every delivery."""
    answer = deliver(client, payload, event=event)
    assert answer.status_code == 200, answer.json
    assert answer.json["event"] == (payload.get("event_name") or payload["object_kind"])
    assert answer.json["outcome"].startswith("ignored")  # this registry has no token to set statuses with
    assert state(app, 101) == "active"


def test_pushes_and_merge_requests_ask_for_one_data_check_per_commit(make_app: Callable[..., Flask]) -> None:
    app = make_app(webhook_secret=SECRET, gitlab_service_token=TOKENS["admin"])
    client = app.test_client()
    outcomes = [
        deliver(client, merge_request_payload(106, "ml/pipeline", SHA), event="Merge Request Hook").json,
        deliver(client, push_payload(106, "ml/pipeline", SHA), event="Push Hook").json,
    ]
    assert outcomes == [
        {"event": "merge_request", "outcome": "data check queued"},
        {"event": "push", "outcome": "data check already asked for"},
    ]
    queued = app.extensions["data_registry"].data_checks.get(106, SHA)
    assert queued is not None and queued.ref == "feature"
