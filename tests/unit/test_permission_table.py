"""Credential kind × role × visibility × action through the real HTTP endpoints (Flask test client), with
GitLab answered by `responses` in the payload shapes GitLab documents. Expected outcomes are data, next
to DESIGN.md 3.3's table:

| project visibility | read                  | write      | delete      |
| public             | anyone (configurable) | Developer+ | Maintainer+ |
| internal           | any signed-in user    | Developer+ | Maintainer+ |
| private            | Reporter+             | Developer+ | Maintainer+ |

Deploy tokens: read_package_registry → read, write_package_registry → write, never delete. Job and ID tokens:
the job's own project with the job's user's role. A project the caller cannot see is a 404."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from app import create_app
from app.db import upgrade
from app.settings import load_settings
from scripts.harness import fresh_database_url

GITLAB = "http://gitlab.test"
AUDIENCE = "https://registry.test"
SERVICE = "glpat-registry-service-token"
ROLES = {"none": 0, "guest": 10, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}
PROJECTS = {"public": 201, "internal": 202, "private": 203}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

OK, DENIED, HIDDEN = "ok", "denied", "hidden"
# For a user's token (access token, OAuth): (role, visibility) -> outcome of (read, write, delete). A
# project the user cannot see is GitLab's 404 for reads; changes get one 403 for hidden and missing alike.
USER_TABLE = {
    "none": {
        "public": (OK, DENIED, DENIED),
        "internal": (OK, DENIED, DENIED),
        "private": (HIDDEN, DENIED, DENIED),
    },
    "guest": {"public": (OK, DENIED, DENIED), "internal": (OK, DENIED, DENIED), "private": (DENIED,) * 3},
    "reporter": {v: (OK, DENIED, DENIED) for v in PROJECTS},
    "developer": {v: (OK, OK, DENIED) for v in PROJECTS},
    "maintainer": {v: (OK, OK, OK) for v in PROJECTS},
    "owner": {v: (OK, OK, OK) for v in PROJECTS},
}
# CI tokens reach their own project, which GitLab always shows them (the registry asks with its service
# token), so no HIDDEN: the role of the job's user decides as for a user.
CI_TABLE = {
    role: {v: tuple(DENIED if o == HIDDEN else o for o in row) for v, row in by_vis.items()}
    for role, by_vis in USER_TABLE.items()
}
# Deploy tokens have no role: scopes decide, on every visibility.
DEPLOY_TABLE = {
    "read_package_registry": (OK, DENIED, DENIED),
    "read_package_registry write_package_registry": (OK, OK, DENIED),
    "write_package_registry": (DENIED, OK, DENIED),
}

CASES = [
    (kind, role, vis, i)
    for kind in ("access_token", "oauth", "job_token", "id_token")
    for role in ROLES
    for vis in PROJECTS
    for i in range(3)
] + [("deploy_token", scopes, vis, i) for scopes in DEPLOY_TABLE for vis in PROJECTS for i in range(3)]


def expected(kind: str, role: str, visibility: str, action: int) -> str:
    if kind == "deploy_token":
        return DEPLOY_TABLE[role][action]
    table = CI_TABLE if kind in ("job_token", "id_token") else USER_TABLE
    return table[role][visibility][action]


class FakeGitLab:
    """GitLab's API answers for one token per (kind, role, visibility), in documented shapes."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}  # secret -> {"kind", "user_id", "project", "scopes"}
        self.levels: dict[tuple[int, int], int] = {}  # (project id, user id) -> access level

    def token(self, kind: str, role: str, visibility: str) -> tuple[dict[str, str], str]:
        """Headers carrying a fresh credential of that kind, and its secret."""
        user_id = 1000 + len(self.users)
        project_id = PROJECTS[visibility]
        if kind != "deploy_token":
            self.levels[(project_id, user_id)] = ROLES[role]
        secret = f"{kind}-{role}-{visibility}-{user_id}".replace(" ", "_")
        record = {
            "kind": kind,
            "user_id": user_id,
            "project": project_id,
            "scopes": role.split() if kind == "deploy_token" else ["api"],
        }
        if kind == "id_token":
            now = int(time.time())
            secret = jwt.encode(
                {
                    "iss": GITLAB,
                    "aud": AUDIENCE,
                    "iat": now,
                    "nbf": now,
                    "exp": now + 300,
                    "project_id": str(project_id),
                    "project_path": f"g/{visibility}",
                    "user_id": str(user_id),
                    "ref_protected": "true",
                },
                KEY,
                algorithm="RS256",
                headers={"kid": "k1"},
            )
        self.users[secret] = record
        if kind == "job_token":
            basic = base64.b64encode(f"gitlab-ci-token:{secret}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}, secret
        if kind == "deploy_token":
            basic = base64.b64encode(f"gitlab+deploy-token-{user_id}:{secret}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}, secret
        return {"Authorization": f"Bearer {secret}"}, secret

    def caller(self, request: Any) -> dict[str, Any] | None:
        auth = request.headers.get("Authorization", "")
        secret = (
            request.headers.get("PRIVATE-TOKEN")
            or request.headers.get("JOB-TOKEN")
            or (auth[7:] if auth.startswith("Bearer ") else None)
        )
        if secret == SERVICE:
            return {"kind": "service", "user_id": 1, "admin": True}
        return self.users.get(secret or "")

    def answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = request.path_url.split("?")[0]
        who = self.caller(request)

        def ok(body: Any) -> tuple[int, dict[str, str], str]:
            return 200, {"Content-Type": "application/json"}, json.dumps(body)

        def status(code: int, message: str) -> tuple[int, dict[str, str], str]:
            return code, {"Content-Type": "application/json"}, json.dumps({"message": message})

        if path == "/oauth/token/info":
            if who is None or who["kind"] != "oauth":
                return 401, {}, json.dumps({"error": "invalid_token", "error_description": "invalid"})
            return ok(
                {
                    "resource_owner_id": who["user_id"],
                    "scope": who["scopes"],
                    "expires_in": 7200,
                    "application": {"uid": "app"},
                    "created_at": int(time.time()),
                }
            )
        if path == "/oauth/discovery/keys":
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
            return ok({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
        path = path.removeprefix("/api/v4")
        if who is None:
            return status(401, "401 Unauthorized")
        if path == "/personal_access_tokens/self":
            if who["kind"] != "access_token":
                return status(401, "401 Unauthorized")
            return ok(
                {
                    "id": 42,
                    "name": "t",
                    "revoked": False,
                    "created_at": "2020-07-23T14:31:47.729Z",
                    "description": "",
                    "scopes": who["scopes"],
                    "user_id": who["user_id"],
                    "last_used_at": None,
                    "active": True,
                    "expires_at": None,
                }
            )
        if path == "/job":
            if who["kind"] != "job_token":
                return status(401, "401 Unauthorized")
            return ok(
                {
                    "id": 77,
                    "status": "running",
                    "ref": "main",
                    "user": {"id": who["user_id"], "username": "u"},
                    "pipeline": {
                        "id": 7,
                        "project_id": who["project"],
                        "ref": "main",
                        "sha": "0" * 40,
                        "status": "running",
                    },
                }
            )
        if path == "/admin/token":
            secret = json.loads(request.body or b"{}").get("token", "")
            token = self.users.get(secret)
            if who["kind"] != "service" or token is None or token["kind"] != "deploy_token":
                return status(404 if who["kind"] == "service" else 403, "404 Not Found")
            return ok(
                {
                    "id": token["user_id"],
                    "name": "d",
                    "username": f"gitlab+deploy-token-{token['user_id']}",
                    "expires_at": None,
                    "scopes": token["scopes"],
                    "revoked": False,
                    "expired": False,
                }
            )
        if match := re.fullmatch(r"/projects/(\d+)/deploy_tokens", path):
            tokens = [
                t
                for t in self.users.values()
                if t["kind"] == "deploy_token" and t["project"] == int(match[1])
            ]
            return ok(
                [
                    {
                        "id": t["user_id"],
                        "name": "d",
                        "username": f"gitlab+deploy-token-{t['user_id']}",
                        "expires_at": None,
                        "scopes": t["scopes"],
                        "revoked": False,
                        "expired": False,
                    }
                    for t in tokens
                ]
            )
        if re.fullmatch(r"/groups/[^/]+/deploy_tokens", path):
            return ok([])
        match = re.fullmatch(r"/projects/(\d+)(?:/members/all/(\d+))?", path)
        if match is None:
            return status(404, "404 Not Found")
        project_id = int(match[1])
        visibility = next(v for v, pid in PROJECTS.items() if pid == project_id)
        level = self.levels.get((project_id, who["user_id"]), 0)
        if who["kind"] != "service" and visibility == "private" and level < 10:
            return status(404, "404 Project Not Found")
        if match[2] is not None:
            level = self.levels.get((project_id, int(match[2])), 0)
            if level == 0:
                return status(404, "404 Not found")
            return ok(
                {
                    "id": int(match[2]),
                    "username": "u",
                    "name": "U",
                    "state": "active",
                    "avatar_url": None,
                    "web_url": "http://gitlab.test/u",
                    "access_level": level,
                    "created_at": "2012-10-22T14:13:35Z",
                    "expires_at": None,
                    "group_saml_identity": None,
                    "membership_state": "active",
                }
            )
        return ok(
            {
                "id": project_id,
                "name": visibility,
                "path": visibility,
                "path_with_namespace": f"g/{visibility}",
                "name_with_namespace": f"g / {visibility}",
                "visibility": visibility,
                "archived": False,
                "default_branch": "main",
                "namespace": {"id": 9, "name": "g", "path": "g", "kind": "group", "full_path": "g"},
                "permissions": {"project_access": None, "group_access": None},
            }
        )


@pytest.fixture(scope="module")
def gitlab() -> Iterator[FakeGitLab]:
    fake = FakeGitLab()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.GET, re.compile(f"{GITLAB}/.*"), callback=fake.answer)
        rsps.add_callback(responses.POST, re.compile(f"{GITLAB}/.*"), callback=fake.answer)
        yield fake


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, gitlab: FakeGitLab) -> FlaskClient:
    storage = tmp_path_factory.mktemp("table") / "storage"
    overrides = {
        "storage_url": f"file://{storage}",
        "database_url": fresh_database_url(storage.parent),
        "gitlab_url": GITLAB,
        "gitlab_service_token": SERVICE,
        "id_token_audience": AUDIENCE,
    }
    upgrade(load_settings(environ={}, overrides=overrides).effective_database_url)
    return create_app(overrides).test_client()


def outcome(action: int, response: Any) -> str:
    code = (response.get_json(silent=True) or {}).get("error", {}).get("code")
    if response.status_code == 404 and code == "project_not_found":
        return HIDDEN
    if response.status_code in (401, 403):
        return DENIED
    if (action == 1 and response.status_code == 201) or code == "object_not_found":
        return OK  # the action was allowed and reached the (absent) object
    raise AssertionError(f"unexpected answer {response.status}")


@pytest.mark.parametrize(("kind", "role", "visibility", "action"), CASES)
def test_permission_table(
    client: FlaskClient,
    gitlab: FakeGitLab,
    kind: str,
    role: str,
    visibility: str,
    action: int,
    tmp_path: Path,
) -> None:
    headers, _ = gitlab.token(kind, role, visibility)
    url = f"/-/projects/{PROJECTS[visibility]}/data/{kind}/{role.replace(' ', '+')}/{action}/object"
    response = [client.get, client.put, client.delete][action](url, headers=headers, data=b"payload")
    assert outcome(action, response) == expected(kind, role, visibility, action), response.status
