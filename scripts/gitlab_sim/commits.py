"""The simulator's commits and commit statuses (doc/api/commits.md): commits by ref and path, one commit,
a commit's statuses, and POST /projects/:id/statuses/:sha with GitLab's state rule (re-posting the state a
pending or running status already holds is a 400; a finished status is followed by a new one)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from scripts.gitlab_sim.world import DEVELOPER, World

STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
_EVENT = {
    "pending": "enqueue",
    "running": "run",
    "success": "success",
    "failed": "drop",
    "canceled": "cancel",
}


def _public(commit: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in commit.items() if key != "files"}


def _changed(world: World, project_id: int, commit: dict[str, Any], path: str) -> bool:
    parents = commit["parent_ids"]
    before = world.commits[project_id][parents[0]]["files"].get(path) if parents else None
    return commit["files"].get(path) != before


def commit_routes(
    world: World,
    rest: str,
    project: Callable[[str], dict[str, Any]],
    paged: Callable[[list[Any]], Response],
    refused: Callable[[int, dict[str, Any]], Exception],
) -> Any:
    """GET routes under /projects/:id/repository/commits; None when `rest` is not one of them. `project`
    gives the project whose code the caller may read (or raises)."""
    if match := re.fullmatch(r"(.+)/repository/commits", rest):
        found = project(match[1])
        ref = request.args.get("ref_name") or "main"
        if world.commit_sha(found["id"], ref) is None:
            raise refused(404, {"message": "404 Reference Not Found"})
        history = world.history(found["id"], ref)
        if path := request.args.get("path"):
            history = [c for c in history if _changed(world, found["id"], c, path)]
        return paged([_public(c) for c in history])
    if match := re.fullmatch(r"(.+)/repository/commits/([^/]+)/statuses", rest):
        found = project(match[1])
        sha = world.commit_sha(found["id"], match[2])
        if sha is None:
            raise refused(404, {"message": "404 Commit Not Found"})
        every = world.statuses.get((found["id"], sha), [])
        if request.args.get("all") not in ("true", "1"):
            latest = {(s["name"], s["ref"]): s for s in every}
            every = list(latest.values())
        return paged(every)
    if match := re.fullmatch(r"(.+)/repository/commits/([^/]+)", rest):
        found = project(match[1])
        sha = world.commit_sha(found["id"], match[2])
        if sha is None:
            raise refused(404, {"message": "404 Commit Not Found"})
        return jsonify(_public(world.commits[found["id"]][sha]))
    return None


def register(
    sim: Flask,
    world: World,
    *,
    api_user: Callable[..., int | None],
    visible_project: Callable[[str, int | None], dict[str, Any]],
    refused: Callable[[int, dict[str, Any]], Exception],
) -> None:
    """POST /projects/:id/statuses/:sha on `sim` (needs scope api and the Developer role)."""

    @sim.post("/api/v4/projects/<path:ident>/statuses/<sha>")
    def post_status(ident: str, sha: str) -> Any:
        user_id = api_user(scopes=("api",))  # a read_api token may not set statuses
        if user_id is None:
            raise refused(401, {"message": "401 Unauthorized"})
        project = visible_project(ident, user_id)
        if world.access_level(project, user_id) < DEVELOPER and not world.is_admin(user_id):
            raise refused(403, {"message": "403 Forbidden"})
        form = {**request.form.to_dict(), **(request.get_json(silent=True) or {})}
        state = str(form.get("state", ""))
        if state not in STATES:
            raise refused(400, {"error": "state does not have a valid value"})
        full = world.commit_sha(project["id"], sha)
        if full is None or full != sha:
            raise refused(404, {"message": "404 Commit Not Found"})
        name = str(form.get("name") or form.get("context") or "default")
        ref = form.get("ref")
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with world.lock:
            world.status_posts.append({"project_id": project["id"], "sha": sha, **form})
            every = world.statuses.setdefault((project["id"], sha), [])
            active = next(
                (
                    s
                    for s in reversed(every)
                    if s["name"] == name and s["ref"] == ref and s["status"] in ("pending", "running")
                ),
                None,
            )
            if active is not None and active["status"] == state:
                message = f"Cannot transition status via :{_EVENT[state]} from :{state}"
                raise refused(
                    400, {"message": f'{message} (Reason(s): Status cannot transition via "{_EVENT[state]}")'}
                )
            user = world.users[user_id]
            status = active or {
                "id": sum(len(v) for v in world.statuses.values()) + 1,
                "sha": sha,
                "ref": ref,
                "name": name,
                "created_at": now,
                "started_at": None,
                "finished_at": None,
                "allow_failure": False,
                "coverage": None,
                "author": {
                    "id": user["id"],
                    "username": user["username"],
                    "name": user.get("name", user["username"]),
                    "state": "active",
                    "avatar_url": None,
                    "web_url": f"{world.url}/{user['username']}",
                },
            }
            status.update(
                status=state,
                description=(str(form["description"])[:255] if form.get("description") else None),
                target_url=form.get("target_url"),
            )
            if state == "running":
                status["started_at"] = now
            if state in ("success", "failed", "canceled", "skipped"):
                status["finished_at"] = now
            if active is None:
                every.append(status)
        return jsonify(status), 201
