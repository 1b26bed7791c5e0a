"""A GitLab API simulator for tests and the demo: the endpoints the registry calls, with the response
shapes GitLab documents, seeded from a JSON file. Nothing in app/ imports it."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

DEFAULT_SEED = Path(__file__).with_name("seed.json")
CREATED = "2026-01-15T10:00:00.000Z"


@dataclass
class World:
    """Users, projects (with members) and tokens, as loaded from a seed."""

    users: dict[int, dict[str, Any]]
    projects: dict[int, dict[str, Any]]
    tokens: dict[str, dict[str, Any]]
    calls: Counter[str] = field(default_factory=Counter)
    fault: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, seed: dict[str, Any]) -> World:
        users = {u["id"]: u for u in seed["users"]}
        by_name = {u["username"]: u["id"] for u in seed["users"]}
        projects = {}
        for p in seed["projects"]:
            members = {by_name[name]: level for name, level in p.get("members", {}).items()}
            projects[p["id"]] = {**p, "members": members}
        tokens = {}
        for i, t in enumerate(seed["access_tokens"], start=1):
            tokens[t["token"]] = {**t, "id": i, "user_id": by_name[t["user"]]}
        return cls(users=users, projects=projects, tokens=tokens)

    def total_calls(self) -> int:
        return sum(self.calls.values())


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(message=message), status


def create_simulator(world: World) -> Flask:
    """The simulator's Flask app over a World (tests keep the World to inspect and steer it)."""
    sim = Flask("gitlab_sim")
    sim.config["world"] = world

    def caller_token() -> dict[str, Any] | None:
        auth = request.headers.get("Authorization", "")
        secret = request.headers.get("PRIVATE-TOKEN") or (
            auth[7:] if auth.lower().startswith("bearer ") else None
        )
        if secret is None:
            return None
        token = world.tokens.get(secret)
        if token is None or token.get("revoked"):
            raise _Unauthorized
        expires = token.get("expires_at")
        if expires and date.fromisoformat(expires) <= datetime.now(UTC).date():
            raise _Unauthorized
        return token

    def visible(project: dict[str, Any], user_id: int | None) -> bool:
        if project["visibility"] == "public":
            return True
        if user_id is None:
            return False
        if project["visibility"] == "internal":
            return True
        return project["members"].get(user_id, 0) >= 10

    def find_project(ident: str, user_id: int | None) -> dict[str, Any] | None:
        if ident.isdigit():
            project = world.projects.get(int(ident))
        else:
            project = next((p for p in world.projects.values() if p["path_with_namespace"] == ident), None)
        return project if project is not None and visible(project, user_id) else None

    class _Unauthorized(Exception):
        pass

    @sim.errorhandler(_Unauthorized)
    def _unauthorized(_: Exception) -> tuple[Response, int]:
        return _error(401, "401 Unauthorized")

    @sim.before_request
    def _count_and_fault() -> tuple[Response, int] | None:
        if request.path.startswith("/-/sim"):
            return None
        with world.lock:
            world.calls[request.path] += 1
        if world.fault:
            response = jsonify(message=f"{world.fault} simulated fault")
            response.headers["Retry-After"] = "7"
            return response, world.fault
        return None

    @sim.get("/api/v4/personal_access_tokens/self")
    def token_self() -> Any:
        token = caller_token()
        if token is None:
            return _error(401, "401 Unauthorized")
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
        token = caller_token()
        if token is None:
            return _error(401, "401 Unauthorized")
        return jsonify(_user(world.users[token["user_id"]]))

    @sim.get("/api/v4/projects/<path:rest>")
    def project_routes(rest: str) -> Any:
        token = caller_token()
        if token is not None and not {"api", "read_api"} & set(token["scopes"]):
            return jsonify(
                error="insufficient_scope",
                error_description="The request requires higher privileges than provided by the access token.",
                scope="api read_api",
            ), 403
        user_id = token["user_id"] if token else None
        ident, sep, member = rest.partition("/members/all/")
        project = find_project(ident, user_id)
        if project is None:
            return _error(404, "404 Project Not Found")
        if not sep:
            return jsonify(_project(project, user_id))
        level = project["members"].get(int(member)) if member.isdigit() else None
        if level is None:
            return _error(404, "404 Not found")
        return jsonify(_member(world.users[int(member)], level))

    @sim.get("/-/sim/stats")
    def stats() -> Any:
        return jsonify(calls=dict(world.calls), total=world.total_calls())

    @sim.post("/-/sim/fault")
    def set_fault() -> Any:
        world.fault = (request.get_json(silent=True) or {}).get("status")
        return jsonify(fault=world.fault)

    return sim


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
    }


def _member(user: dict[str, Any], level: int) -> dict[str, Any]:
    return {
        **{
            k: v
            for k, v in _user(user).items()
            if k in ("id", "username", "name", "state", "avatar_url", "web_url")
        },
        "access_level": level,
        "created_at": CREATED,
        "created_by": None,
        "expires_at": None,
        "group_saml_identity": None,
        "membership_state": "active",
    }


def _project(project: dict[str, Any], user_id: int | None) -> dict[str, Any]:
    namespace, _, name = project["path_with_namespace"].rpartition("/")
    level = project["members"].get(user_id) if user_id is not None else None
    return {
        "id": project["id"],
        "description": project.get("description", ""),
        "name": name,
        "name_with_namespace": project["path_with_namespace"].replace("/", " / "),
        "path": name,
        "path_with_namespace": project["path_with_namespace"],
        "created_at": CREATED,
        "default_branch": "main",
        "ssh_url_to_repo": f"git@gitlab.example.com:{project['path_with_namespace']}.git",
        "http_url_to_repo": f"http://gitlab.example.com/{project['path_with_namespace']}.git",
        "web_url": f"http://gitlab.example.com/{project['path_with_namespace']}",
        "visibility": project["visibility"],
        "archived": project.get("archived", False),
        "namespace": {
            "id": 1000 + project["id"],
            "name": namespace,
            "path": namespace,
            "kind": "group",
            "full_path": namespace,
        },
        "package_registry_access_level": "enabled",
        "permissions": {
            "project_access": {"access_level": level, "notification_level": 3} if level else None,
            "group_access": None,
        },
    }


def load_world(path: Path = DEFAULT_SEED) -> World:
    """A World from a seed file."""
    return World.load(json.loads(path.read_text()))
