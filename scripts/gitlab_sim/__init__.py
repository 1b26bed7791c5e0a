"""A GitLab API simulator for tests and the demo: the endpoints the registry calls, with the response
shapes GitLab documents, seeded from a JSON file (scripts/gitlab_sim/seed.json). Nothing in app/ imports it.

Tokens of every kind the registry accepts: personal/project/group access tokens, OAuth tokens, deploy
tokens, CI job tokens of running and finished jobs, and CI ID tokens signed with the simulator's own key
(published at /oauth/discovery/keys); GitLab's OAuth provider and repository files for the browser UI.
`/-/sim/stats` counts API calls, `POST /-/sim/fault` breaks them, `POST /-/sim/repository` commits files,
`POST /-/sim/tag` tags a commit."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request

from scripts.gitlab_sim import commits, oauth, packages
from scripts.gitlab_sim.world import GUEST, MAINTAINER, World

DEFAULT_SEED = Path(__file__).with_name("seed.json")
CREATED = "2026-01-15T10:00:00.000Z"
# lib/api/api_guard.rb: what GitLab answers for a token it knows but will not accept.
EXPIRED = {
    "error": "invalid_token",
    "error_description": "Token is expired. You can either do re-authorization or token refresh.",
}
REVOKED = {
    "error": "invalid_token",
    "error_description": "Token was revoked. You have to re-authorize from the user.",
}
UNAUTHORIZED = {"message": "401 Unauthorized"}
INSUFFICIENT_SCOPE = {
    "error": "insufficient_scope",
    "error_description": "The request requires higher privileges than provided by the access token.",
    "scope": "api read_api",
}

__all__ = ["DEFAULT_SEED", "World", "create_simulator", "load_world"]


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _user(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "username": user["username"],
        "name": user.get("name", user["username"]),
        "state": "active",
        "locked": False,
        "avatar_url": None,
        "web_url": f"http://gitlab.example.com/{user['username']}",
        "created_at": CREATED,
        "bot": user.get("bot", False),
        "is_admin": bool(user.get("admin")),
    }


def _member(user: dict[str, Any], level: int) -> dict[str, Any]:
    keep = ("id", "username", "name", "state", "avatar_url", "web_url")
    return {
        **{k: v for k, v in _user(user).items() if k in keep},
        "access_level": level,
        "created_at": CREATED,
        "created_by": None,
        "expires_at": None,
        "group_saml_identity": None,
        "membership_state": "active",
    }


def _project(world: World, project: dict[str, Any], user_id: int | None) -> dict[str, Any]:
    path = project["path_with_namespace"]
    namespace, _, name = path.rpartition("/")
    group = world.groups.get(namespace)
    direct = project["members"].get(user_id) if user_id is not None else None
    return {
        "id": project["id"],
        "description": project.get("description", ""),
        "name": name,
        "name_with_namespace": path.replace("/", " / "),
        "path": name,
        "path_with_namespace": path,
        "created_at": CREATED,
        "default_branch": "main",
        "ssh_url_to_repo": f"git@gitlab.example.com:{path}.git",
        "http_url_to_repo": f"http://gitlab.example.com/{path}.git",
        "web_url": f"http://gitlab.example.com/{path}",
        "visibility": project["visibility"],
        "archived": project.get("archived", False),
        "namespace": {
            "id": group["id"] if group else 1000 + project["id"],
            "name": namespace.rpartition("/")[2],
            "path": namespace.rpartition("/")[2],
            "kind": "group",
            "full_path": namespace,
            "parent_id": None,
        },
        "package_registry_access_level": "enabled",
        "marked_for_deletion_on": project.get("marked_for_deletion_on"),
        "permissions": {
            "project_access": {"access_level": direct, "notification_level": 3} if direct else None,
            "group_access": None,
        },
    }


def create_simulator(world: World) -> Flask:
    """The simulator's Flask app over a World (tests keep the World to inspect and steer it)."""
    sim = Flask("gitlab_sim")

    @sim.errorhandler(_Refused)
    def _refused(error: _Refused) -> tuple[Response, int]:
        return jsonify(error.body), error.status

    @sim.before_request
    def _count_and_fault() -> tuple[Response, int] | None:
        if request.path.startswith("/-/sim"):
            return None
        with world.lock:
            world.calls[f"{request.method} {request.path}"] += 1
        if world.fault:
            if world.fault_count is not None:
                world.fault_count -= 1
                if world.fault_count < 0:
                    world.fault = world.fault_count = None
                    return None
            response = jsonify(message=f"{world.fault} simulated fault")
            response.headers["Retry-After"] = str(world.fault_retry_after)
            return response, world.fault
        return None

    def bearer() -> str | None:
        auth = request.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def caller(*, jobs: bool = False) -> tuple[str, dict[str, Any]] | None:
        """(kind, record) of the credential on the request, the way lib/gitlab/auth/auth_finders.rb looks."""
        secret = request.headers.get("PRIVATE-TOKEN") or bearer()
        job_secret = request.headers.get("JOB-TOKEN") or request.args.get("job_token")
        if jobs and (job_secret or secret in world.jobs):
            job = world.jobs.get(job_secret or secret or "")
            if job is None or job.get("status", "running") != "running":
                raise _Refused(401, UNAUTHORIZED)
            return "job", job
        if secret is None:
            return None
        if secret in world.access_tokens:
            token = world.access_tokens[secret]
            state = world.access_token_state(token)
            if state != "active":
                raise _Refused(401, EXPIRED if state == "expired" else REVOKED)
            return "access", token
        if secret in world.oauth_tokens:
            if world.oauth_token_expired(world.oauth_tokens[secret]):
                raise _Refused(401, EXPIRED)
            return "oauth", world.oauth_tokens[secret]
        raise _Refused(401, UNAUTHORIZED)

    def api_user(*, scopes: tuple[str, ...] = ("api", "read_api")) -> int | None:
        """The user behind a PAT or OAuth token that may call the API (None: anonymous)."""
        found = caller()
        if found is None:
            return None
        _, record = found
        if not set(scopes) & set(record["scopes"]):
            raise _Refused(403, INSUFFICIENT_SCOPE)
        return int(record["user_id"])

    def visible_project(ident: str, user_id: int | None) -> dict[str, Any]:
        project = world.project_by(ident)
        if project is None or not world.visible(project, user_id):
            raise _Refused(404, {"message": "404 Project Not Found"})
        return project

    def require_maintainer(project: dict[str, Any], user_id: int | None) -> None:
        if user_id is None:
            raise _Refused(401, UNAUTHORIZED)
        if not world.is_admin(user_id) and world.access_level(project, user_id) < MAINTAINER:
            raise _Refused(403, {"message": "403 Forbidden"})

    @sim.get("/api/v4/personal_access_tokens/self")
    def token_self() -> Any:
        found = caller()
        if found is None or found[0] != "access":
            raise _Refused(401, UNAUTHORIZED)
        token = found[1]
        return jsonify(
            id=token["id"],
            name=token.get("name", "token"),
            revoked=False,
            created_at=CREATED,
            description=token.get("description", ""),
            scopes=token["scopes"],
            user_id=token["user_id"],
            last_used_at=CREATED,
            active=True,
            expires_at=token.get("expires_at"),
        )

    @sim.get("/api/v4/user")
    def current_user() -> Any:
        user_id = api_user(scopes=("api", "read_api", "read_user"))
        if user_id is None:
            raise _Refused(401, UNAUTHORIZED)
        return jsonify(_user(world.users[user_id]))

    @sim.get("/oauth/token/info")
    def oauth_info() -> Any:
        token = world.oauth_tokens.get(bearer() or "")
        if token is None or world.oauth_token_expired(token):
            raise _Refused(
                401, {"error": "invalid_token", "error_description": "The access token is invalid"}
            )
        return jsonify(
            resource_owner_id=token["user_id"],
            scope=token["scopes"],
            expires_in=max(0, int(token["created_at"] + token.get("expires_in", 7200) - time.time())),
            application={"uid": "sim-app"},
            created_at=token["created_at"],
        )

    oauth.register(sim, world)

    def package_user() -> int | None:
        """The user behind a package request: PRIVATE-TOKEN, Bearer, Basic (the password is the token, as
        DVC's http remote sends it), or a job token; deploy tokens act as no user here."""
        auth = request.authorization
        if auth is not None and auth.type == "basic" and auth.password:
            secret = auth.password
            if secret in world.jobs:
                job = world.jobs[secret]
                return int(job["user_id"]) if job.get("status", "running") == "running" else None
            record = world.access_tokens.get(secret) or world.oauth_tokens.get(secret)
            if record is None:
                raise _Refused(401, UNAUTHORIZED)
            return int(record["user_id"])
        found = caller(jobs=True)
        return None if found is None else int(found[1]["user_id"])

    @sim.get("/oauth/discovery/keys")
    def jwks() -> Any:
        return jsonify(world.jwks())

    @sim.get("/api/v4/job")
    def job() -> Any:
        found = caller(jobs=True)
        if found is None or found[0] != "job":
            raise _Refused(401, UNAUTHORIZED)
        job = found[1]
        project = world.projects[job["project_id"]]
        return jsonify(
            id=job["id"],
            status=job.get("status", "running"),
            stage="test",
            name=job.get("name", "train"),
            ref=job.get("ref", "main"),
            tag=False,
            coverage=None,
            allow_failure=False,
            created_at=CREATED,
            started_at=CREATED,
            finished_at=None,
            duration=12.5,
            user=_user(world.users[job["user_id"]]),
            pipeline={
                "id": job["id"] * 10,
                "project_id": project["id"],
                "ref": job.get("ref", "main"),
                "sha": "0" * 40,
                "status": "running",
            },
            web_url=f"http://gitlab.example.com/{project['path_with_namespace']}/-/jobs/{job['id']}",
            project={"ci_job_token_scope_enabled": False},
        )

    @sim.post("/api/v4/admin/token")
    def admin_token() -> Any:
        user_id = api_user()
        if not world.is_admin(user_id):
            raise _Refused(403, {"message": "403 Forbidden"})
        secret = (request.get_json(silent=True) or request.form or {}).get("token", "")
        if secret in world.deploy_tokens:
            return jsonify(world.deploy_token_entity(world.deploy_tokens[secret]))
        if secret in world.access_tokens:
            token = world.access_tokens[secret]
            return jsonify(
                id=token["id"],
                name=token.get("name", "token"),
                scopes=token["scopes"],
                user_id=token["user_id"],
                active=world.access_token_state(token) == "active",
                revoked=bool(token.get("revoked")),
                expires_at=token.get("expires_at"),
            )
        raise _Refused(404, {"message": "404 Not Found"})

    @sim.get("/api/v4/projects")
    def projects() -> Any:
        """GET /projects?membership=true (simple, paged as GitLab pages: Link rel=next, X-Total)."""
        user_id = api_user()
        if user_id is None or request.args.get("membership") not in ("true", "True", "1"):
            raise _Refused(400, {"error": "the simulator lists members' projects only"})
        mine = [p for p in world.projects.values() if world.access_level(p, user_id) >= GUEST]
        return paged([_project(world, p, user_id) for p in mine])

    def repository(ident: str, user_id: int | None) -> tuple[dict[str, Any], dict[str, dict[str, bytes]]]:
        project = visible_project(ident, user_id)
        if not world.reads_code(project, user_id):
            raise _Refused(403, {"message": "403 Forbidden"})
        return project, world.repositories.get(project["id"], {})

    def files_at(ident: str, user_id: int | None, ref: str) -> dict[str, bytes] | None:
        project, _ = repository(ident, user_id)
        return world.files_at(project["id"], ref)

    def paged(items: list[Any]) -> Response:
        """GitLab's offset pagination: per_page (max 100), page, X-Total, X-Next-Page, Link rel=next."""
        per_page = min(int(request.args.get("per_page", 20)), 100)
        page = int(request.args.get("page", 1))
        response = jsonify(items[(page - 1) * per_page : page * per_page])
        response.headers["X-Total"] = str(len(items))
        response.headers["X-Page"] = str(page)
        if page * per_page < len(items):
            query = {**request.args.to_dict(), "page": page + 1}
            response.headers["Link"] = f'<{request.base_url}?{urlencode(query)}>; rel="next"'
            response.headers["X-Next-Page"] = str(page + 1)
        return response

    @sim.get("/api/v4/projects/<path:rest>")
    def project_routes(rest: str) -> Any:
        user_id = api_user()
        answer = commits.commit_routes(world, rest, lambda i: repository(i, user_id)[0], paged, _Refused)
        if answer is not None:
            return answer
        if match := re.fullmatch(r"(.+)/repository/tree", rest):
            files = files_at(match[1], user_id, request.args.get("ref", "main"))
            if files is None:
                raise _Refused(404, {"message": "404 Tree Not Found"})
            if request.args.get("recursive") not in ("true", "True", "1"):
                raise _Refused(400, {"error": "the simulator lists trees recursively only"})
            dirs = sorted({"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)})
            entries = [{"path": d, "type": "tree"} for d in dirs] + [
                {"path": f, "type": "blob"} for f in sorted(files)
            ]
            return paged(
                [
                    {
                        "id": hashlib.sha1(e["path"].encode()).hexdigest(),
                        "name": e["path"].rpartition("/")[2],
                        "type": e["type"],
                        "path": e["path"],
                        "mode": "040000" if e["type"] == "tree" else "100644",
                    }
                    for e in entries
                ]
            )
        if match := re.fullmatch(r"(.+)/repository/files/(.+)/raw", rest):
            content = (files_at(match[1], user_id, request.args.get("ref", "main")) or {}).get(match[2])
            if content is None:
                raise _Refused(404, {"message": "404 File Not Found"})
            return Response(content, mimetype="text/plain")
        if match := re.fullmatch(r"(.+)/repository/(branches|tags)", rest):
            project, refs = repository(match[1], user_id)
            tags = world.tags.get(project["id"], set())
            wanted = [r for r in sorted(refs) if (r in tags) == (match[2] == "tags")]
            return paged(
                [
                    {
                        "name": r,
                        "default": r == "main",
                        "protected": r == "main",
                        "commit": {"id": world.commit_sha(project["id"], r) or "0" * 40},
                    }
                    for r in wanted
                ]
            )
        if match := re.fullmatch(r"(.+)/members/all/(\d+)", rest):
            project = visible_project(match[1], user_id)
            level = world.access_level(project, int(match[2]))
            if level == 0:
                raise _Refused(404, {"message": "404 Not found"})
            return jsonify(_member(world.users[int(match[2])], level))
        if match := re.fullmatch(r"(.+)/deploy_tokens", rest):
            project = visible_project(match[1], user_id)
            require_maintainer(project, user_id)
            return jsonify(
                [
                    world.deploy_token_entity(t)
                    for t in world.deploy_tokens.values()
                    if t.get("project") == project["path_with_namespace"]
                ]
            )
        if match := re.fullmatch(r"(.+)/job_token_scope(/allowlist|/groups_allowlist)?", rest):
            project = visible_project(match[1], user_id)
            require_maintainer(project, user_id)
            scope = project.get("job_token_scope", {})
            if match[2] is None:
                return jsonify(inbound_enabled=scope.get("inbound_enabled", True), outbound_enabled=False)
            if match[2] == "/allowlist":
                listed = [world.project_by(p) for p in scope.get("projects", [])]
                return jsonify([_project(world, p, None) for p in listed if p is not None])
            return jsonify(
                [
                    {
                        "id": world.groups[g]["id"],
                        "full_path": g,
                        "name": g.rpartition("/")[2],
                        "path": g.rpartition("/")[2],
                        "web_url": f"http://gitlab.example.com/groups/{g}",
                    }
                    for g in scope.get("groups", [])
                ]
            )
        return jsonify(_project(world, visible_project(rest, user_id), user_id))

    @sim.get("/api/v4/groups/<path:ident>/deploy_tokens")
    def group_deploy_tokens(ident: str) -> Any:
        user_id = api_user()
        group = world.group_by(ident)
        if group is None or user_id is None:
            raise _Refused(404, {"message": "404 Group Not Found"})
        if not world.is_admin(user_id) and group["members"].get(user_id, 0) < MAINTAINER:
            raise _Refused(403, {"message": "403 Forbidden"})
        return jsonify(
            [
                world.deploy_token_entity(t)
                for t in world.deploy_tokens.values()
                if t.get("group") == group["full_path"]
            ]
        )

    @sim.get("/-/sim/stats")
    def stats() -> Any:
        return jsonify(calls=dict(world.calls), total=world.total_calls())

    @sim.post("/-/sim/fault")
    def set_fault() -> Any:
        spec = request.get_json(silent=True) or {}
        world.fault, world.fault_count = spec.get("status"), spec.get("count")
        world.fault_retry_after = int(spec.get("retry_after", 7))
        return jsonify(fault=world.fault, count=world.fault_count)

    @sim.post("/-/sim/repository")
    def set_repository() -> Any:
        """Set a repository's files at a ref: {"project": path, "ref": "main", "files": {path: text}}."""
        spec = request.get_json(force=True)
        project = world.project_by(str(spec["project"]))
        if project is None:
            raise _Refused(404, {"message": "no such project"})
        files = {path: str(text).encode() for path, text in spec["files"].items()}
        ref = spec.get("ref", "main")
        if ref in world.tags.get(project["id"], set()):  # a tag's files, set straight (no commit)
            world.repositories.setdefault(project["id"], {})[ref] = files
            return jsonify(project=project["path_with_namespace"], files=sorted(files), sha=None)
        sha = world.commit(project["id"], ref, files, str(spec.get("message") or ""))
        return jsonify(project=project["path_with_namespace"], files=sorted(files), sha=sha)

    @sim.post("/-/sim/tag")
    def set_tag() -> Any:
        """Tag a commit: {"project": path, "tag": "v1", "ref": branch, tag or sha}."""
        spec = request.get_json(force=True)
        project = world.project_by(str(spec["project"]))
        if project is None:
            raise _Refused(404, {"message": "no such project"})
        sha = world.tag(project["id"], str(spec["tag"]), str(spec["ref"]))
        if sha is None:
            raise _Refused(404, {"message": "no such ref"})
        return jsonify(tag=spec["tag"], sha=sha)

    @sim.get("/-/sim/id_token")
    def id_token() -> Any:
        job = next((t for t, j in world.jobs.items() if str(j["id"]) == request.args["job"]), None)
        if job is None:
            raise _Refused(404, {"message": "no such job"})
        return Response(world.mint_id_token(job, request.args["aud"]), mimetype="text/plain")

    commits.register(sim, world, api_user=api_user, visible_project=visible_project, refused=_Refused)
    from scripts.gitlab_sim import git_http  # Git over dumb HTTP for `dvc get` (issue 27)

    git_http.register(sim, world)
    packages.register(
        sim,
        world,
        package_user=package_user,
        visible_project=visible_project,
        paged=paged,
        refused=_Refused,
    )

    return sim


def load_world(path: Path = DEFAULT_SEED, url: str = "http://gitlab.example.com") -> World:
    """A World from a seed file; `url` is the simulator's own base URL (the issuer of its ID tokens)."""
    return World.load(json.loads(path.read_text()), url=url)
