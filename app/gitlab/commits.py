"""Commits and commit statuses on GitLab's REST API, for the python-gitlab gateway (a mixin on its `_call`,
so python-gitlab stays imported in client.py alone)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from app.errors import InvalidCredential, NotFound, PermissionDenied
from app.gitlab.answers import GitLabForbidden, GitLabNotFound, GitLabStateHeld, encode_path
from app.model.commits import CommitInfo, CommitState
from app.model.identity import Credential

MAX_DESCRIPTION = 255  # GitLab keeps a status description of up to 255 characters


class _Calls(Protocol):
    def _call(self, credential: Credential | None, method: str, path: str, **kwargs: Any) -> Any: ...


def commit_info(data: dict[str, Any]) -> CommitInfo:
    """A commit from GitLab's documented shape."""
    when = str(data.get("authored_date") or data.get("created_at") or "1970-01-01T00:00:00Z")
    authored = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return CommitInfo(
        id=str(data["id"]),
        short_id=str(data.get("short_id") or str(data["id"])[:8]),
        title=str(data.get("title") or ""),
        message=str(data.get("message") or ""),
        author_name=str(data.get("author_name") or ""),
        authored_date=authored if authored.tzinfo else authored.replace(tzinfo=UTC),
        parent_ids=tuple(str(p) for p in data.get("parent_ids") or ()),
        web_url=str(data.get("web_url") or ""),
    )


class CommitCalls:
    """GET commits (by ref and path), GET a commit, POST a commit status."""

    def commits(
        self: _Calls,
        credential: Credential | None,
        project_id: int,
        *,
        ref: str,
        path: str | None = None,
        limit: int = 100,
    ) -> list[CommitInfo]:
        query: dict[str, Any] = {"ref_name": ref, "per_page": min(max(limit, 1), 100)}
        if path:
            query["path"] = path
        try:
            found = self._call(
                credential, "get", f"/projects/{project_id}/repository/commits", query_data=query
            )
        except GitLabNotFound:
            raise NotFound(f"No ref {ref!r} in this repository") from None
        except GitLabForbidden:
            raise PermissionDenied("You cannot read this project's repository") from None
        return [commit_info(c) for c in found[:limit]]

    def commit(
        self: _Calls, credential: Credential | None, project_id: int, sha_or_ref: str
    ) -> CommitInfo | None:
        try:
            data = self._call(
                credential, "get", f"/projects/{project_id}/repository/commits/{encode_path(sha_or_ref)}"
            )
        except GitLabNotFound:
            return None
        except GitLabForbidden:
            raise PermissionDenied("You cannot read this project's repository") from None
        return commit_info(data)

    def set_commit_status(
        self: _Calls,
        service: Credential,
        project_id: int,
        sha: str,
        *,
        state: CommitState,
        name: str,
        description: str,
        target_url: str | None,
        ref: str | None = None,
    ) -> None:
        form: dict[str, Any] = {"state": state, "name": name, "description": description[:MAX_DESCRIPTION]}
        if target_url:
            form["target_url"] = target_url
        if ref:
            form["ref"] = ref
        try:
            self._call(service, "post", f"/projects/{project_id}/statuses/{sha}", post_data=form)
        except GitLabNotFound:
            raise NotFound(f"GitLab has no commit {sha} in project {project_id}") from None
        except GitLabStateHeld:
            return  # the status already holds this state: GitLab's 400 for pending over pending is a no-op
        except InvalidCredential:
            raise PermissionDenied("GitLab refused the registry's status token") from None
        except GitLabForbidden:
            raise PermissionDenied(
                "The registry's token may not set statuses here: it needs the Developer role, scope api"
            ) from None
