"""GitLab's push and merge request hook payloads as its documentation prints them (webhook events:
doc/user/project/integrations/webhook_events.md; system hooks: doc/administration/system_hooks.md), made
for a project and commit of the simulator, and a way to deliver one to the registry as GitLab does."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import requests

ZERO_SHA = "0" * 40
_REPOSITORY = {
    "name": "Diaspora",
    "url": "git@example.com:mike/diaspora.git",
    "description": "",
    "homepage": "http://example.com/mike/diaspora",
    "git_http_url": "http://example.com/mike/diaspora.git",
    "git_ssh_url": "git@example.com:mike/diaspora.git",
    "visibility_level": 0,
}


def _project(project_id: int, path: str) -> dict[str, Any]:
    return {
        "id": project_id,
        "name": path.rsplit("/", 1)[-1],
        "description": "",
        "web_url": f"http://example.com/{path}",
        "avatar_url": None,
        "git_ssh_url": f"git@example.com:{path}.git",
        "git_http_url": f"http://example.com/{path}.git",
        "namespace": path.split("/", 1)[0],
        "visibility_level": 0,
        "path_with_namespace": path,
        "default_branch": "main",
        "homepage": f"http://example.com/{path}",
        "url": f"git@example.com:{path}.git",
        "ssh_url": f"git@example.com:{path}.git",
        "http_url": f"http://example.com/{path}.git",
    }


def push_payload(
    project_id: int,
    path: str,
    after: str,
    *,
    before: str = "95790bf891e76fee5e1747ab589903a6a1f80f22",
    branch: str = "main",
    system: bool = False,
) -> dict[str, Any]:
    """A push event: the project or group webhook's (`object_kind` and `event_name`) or, with system, the
    system hook's (`event_name` only, no `project.id`, commits never listed)."""
    payload: dict[str, Any] = {
        "object_kind": "push",
        "event_name": "push",
        "before": before,
        "after": after,
        "ref": f"refs/heads/{branch}",
        "ref_protected": True,
        "checkout_sha": None if after == ZERO_SHA else after,
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "user_email": "john@example.com",
        "user_avatar": "https://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80",
        "project_id": project_id,
        "project": _project(project_id, path),
        "repository": dict(_REPOSITORY),
        "commits": [
            {
                "id": after,
                "message": "fixed readme",
                "title": "fixed readme",
                "timestamp": "2012-01-03T23:36:29+02:00",
                "url": f"http://example.com/{path}/commit/{after}",
                "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
                "added": ["data.dvc"],
                "modified": [],
                "removed": [],
            }
        ],
        "total_commits_count": 1,
    }
    if system:
        del payload["object_kind"], payload["ref_protected"], payload["user_username"]
        del payload["project"]["id"]
        payload["commits"] = []
    return payload


def merge_request_payload(
    project_id: int,
    path: str,
    last_commit: str,
    *,
    action: str = "open",
    source_branch: str = "feature",
    system: bool = False,
) -> dict[str, Any]:
    """A merge request event (`object_kind: merge_request`, no `event_name`) from source_branch into
    main of the same project; with system, the system hook's shorter object_attributes."""
    project = _project(project_id, path)
    attributes: dict[str, Any] = {
        "id": 99,
        "iid": 1,
        "target_branch": "main",
        "source_branch": source_branch,
        "source_project_id": project_id,
        "author_id": 51,
        "assignee_ids": [6],
        "assignee_id": 6,
        "reviewer_ids": [6],
        "title": "MS-Viewport",
        "created_at": "2013-12-03T17:23:34Z",
        "updated_at": "2013-12-03T17:23:34Z",
        "last_edited_at": "2013-12-03T17:23:34Z",
        "last_edited_by_id": 1,
        "milestone_id": None,
        "state_id": 1,
        "state": "opened",
        "blocking_discussions_resolved": True,
        "work_in_progress": False,
        "draft": False,
        "first_contribution": True,
        "merge_status": "unchecked",
        "target_project_id": project_id,
        "description": "",
        "url": f"http://example.com/{path}/-/merge_requests/1",
        "source": copy.deepcopy(project),
        "target": copy.deepcopy(project),
        "last_commit": {
            "id": last_commit,
            "message": "fixed readme",
            "title": "Update file README.md",
            "timestamp": "2012-01-03T23:36:29+02:00",
            "url": f"http://example.com/{path}/commits/{last_commit}",
            "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
        },
        "labels": [],
        "action": action,
        "detailed_merge_status": "mergeable",
    }
    if system:
        for field in ("reviewer_ids", "last_edited_at", "last_edited_by_id", "state_id", "draft"):
            del attributes[field]
        del attributes["last_commit"]["title"]
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {
            "id": 1,
            "name": "Administrator",
            "username": "root",
            "avatar_url": "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61?s=40&d=identicon",
            "email": "admin@example.com",
        },
        "project": project,
        "repository": {
            "name": project["name"],
            "url": project["git_http_url"],
            "description": "",
            "homepage": project["homepage"],
        },
        "object_attributes": attributes,
        "labels": [],
        "changes": {},
        "assignees": [],
        "reviewers": [],
    }


def header_for(payload: dict[str, Any], *, system: bool = False) -> str:
    """The X-Gitlab-Event header GitLab sends with the payload."""
    if system:
        return "System Hook"
    return {"push": "Push Hook", "merge_request": "Merge Request Hook"}[str(payload["object_kind"])]


def deliver(
    registry_url: str, secret: str, payload: dict[str, Any], *, system: bool = False, timeout: float = 10
) -> requests.Response:
    """POST the payload to the registry's /-/hooks/gitlab as GitLab does (secret, event and UUID headers)."""
    return requests.post(
        f"{registry_url}/-/hooks/gitlab",
        data=json.dumps(payload),
        headers={
            "Content-Type": "application/json",
            "X-Gitlab-Token": secret,
            "X-Gitlab-Event": header_for(payload, system=system),
            "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            "Idempotency-Key": str(uuid.uuid4()),
            "User-Agent": "GitLab/18.6.0",
        },
        timeout=timeout,
    )
