"""The simulator's state: users, groups, projects, every kind of token, jobs, and a signing key for CI ID
tokens; with GitLab's rules for effective membership and visibility."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GUEST, REPORTER, DEVELOPER, MAINTAINER = 10, 20, 30, 40


def _past(day: str | None) -> bool:
    return bool(day) and date.fromisoformat(str(day)) <= datetime.now(UTC).date()


@dataclass
class World:
    """Everything the simulated GitLab knows, plus counters and a fault switch for tests."""

    url: str
    users: dict[int, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    projects: dict[int, dict[str, Any]]
    access_tokens: dict[str, dict[str, Any]]
    oauth_tokens: dict[str, dict[str, Any]]
    deploy_tokens: dict[str, dict[str, Any]]
    jobs: dict[str, dict[str, Any]]
    oauth_apps: dict[str, dict[str, Any]] = field(default_factory=dict)  # client_id -> secret, redirect_uri
    signed_in_user: str | None = "dev"  # who /oauth/authorize signs in (None: the user denies)
    oauth_lifetime: int = 7200  # seconds an issued access token lives (GitLab: 2 hours)
    refresh_delay: float = 0.0  # seconds the token endpoint takes to answer a refresh (races in tests)
    oauth_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    # project id -> ref (branch or tag name) -> file path -> content: what the repository holds
    repositories: dict[int, dict[str, dict[str, bytes]]] = field(default_factory=dict)
    tags: dict[int, set[str]] = field(default_factory=dict)  # which of a project's refs are tags
    # commits: project id -> sha -> GitLab's commit shape plus "files" (the tree at it); heads: project id ->
    # branch or tag -> sha (refs set straight in `repositories` have no commit)
    commits: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    heads: dict[int, dict[str, str]] = field(default_factory=dict)
    # commit statuses: (project id, sha) -> every status, oldest first; status_posts: every POST, for tests
    statuses: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)
    status_posts: list[dict[str, Any]] = field(default_factory=list)
    # generic packages: project id -> (name, version) -> {"id", "files": {file_name: entry}}, and the bytes
    packages: dict[int, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    package_files: dict[tuple[int, str, str, str], bytes] = field(default_factory=dict)
    fault_count: int | None = None  # answer `fault` this many more times, then recover
    fault_retry_after: int = 7  # the Retry-After of a fault
    calls: Counter[str] = field(default_factory=Counter)
    fault: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    kid: str = "sim-key-1"

    @classmethod
    def load(cls, seed: dict[str, Any], url: str = "http://gitlab.example.com") -> World:
        ids = {u["username"]: u["id"] for u in seed["users"]}

        def members(entry: dict[str, Any]) -> dict[int, int]:
            return {ids[name]: level for name, level in entry.get("members", {}).items()}

        groups = {g["full_path"]: {**g, "members": members(g)} for g in seed.get("groups", [])}
        projects = {p["id"]: {**p, "members": members(p)} for p in seed["projects"]}
        access = {
            t["token"]: {**t, "id": i, "user_id": ids[t["user"]]}
            for i, t in enumerate(seed["access_tokens"], start=1)
        }
        oauth = {
            t["token"]: {**t, "user_id": ids[t["user"]], "created_at": int(time.time())}
            for t in seed.get("oauth_tokens", [])
        }
        deploy = {t["token"]: t for t in seed.get("deploy_tokens", [])}
        by_path = {p["path_with_namespace"]: p["id"] for p in seed["projects"]}
        jobs = {
            j["token"]: {**j, "user_id": ids[j["user"]], "project_id": by_path[j["project"]]}
            for j in seed.get("jobs", [])
        }
        return cls(
            url=url,
            users={u["id"]: u for u in seed["users"]},
            groups=groups,
            projects=projects,
            access_tokens=access,
            oauth_tokens=oauth,
            deploy_tokens=deploy,
            jobs=jobs,
            oauth_apps={a["client_id"]: a for a in seed.get("oauth_apps", [])},
        )

    def total_calls(self) -> int:
        return sum(self.calls.values())

    # --- GitLab's rules -------------------------------------------------------------------------

    def project_by(self, ident: str) -> dict[str, Any] | None:
        if ident.isascii() and ident.isdigit():
            return self.projects.get(int(ident))
        return next((p for p in self.projects.values() if p["path_with_namespace"] == ident), None)

    def group_by(self, ident: str) -> dict[str, Any] | None:
        if ident.isascii() and ident.isdigit():
            return next((g for g in self.groups.values() if g["id"] == int(ident)), None)
        return self.groups.get(ident)

    def _ancestors(self, path: str) -> list[dict[str, Any]]:
        parts = path.split("/")
        return [
            self.groups[p]
            for p in ("/".join(parts[:n]) for n in range(1, len(parts) + 1))
            if p in self.groups
        ]

    def access_level(self, project: dict[str, Any], user_id: int) -> int:
        """Effective role: direct, inherited from ancestor groups, and through groups the project is
        shared with (capped at the share's level); the highest wins."""
        namespace = project["path_with_namespace"].rpartition("/")[0]
        levels = [project["members"].get(user_id, 0)]
        levels += [g["members"].get(user_id, 0) for g in self._ancestors(namespace)]
        for share in project.get("shared_with_groups", []):
            inherited = max(
                (g["members"].get(user_id, 0) for g in self._ancestors(share["group"])), default=0
            )
            levels.append(min(inherited, share["access_level"]))
        return max(levels)

    def reads_code(self, project: dict[str, Any], user_id: int | None) -> bool:
        """Repository read access: public projects for all, internal for users, else Reporter and up."""
        if project["visibility"] == "public" or self.is_admin(user_id):
            return True
        if user_id is None:
            return False
        return project["visibility"] == "internal" or self.access_level(project, user_id) >= 20

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and bool(self.users[user_id].get("admin"))

    def visible(self, project: dict[str, Any], user_id: int | None) -> bool:
        if project["visibility"] == "public" or self.is_admin(user_id):
            return True
        if user_id is None:
            return False
        return project["visibility"] == "internal" or self.access_level(project, user_id) >= GUEST

    def oauth_token_expired(self, token: dict[str, Any]) -> bool:
        return bool(token.get("created_at")) and time.time() > token["created_at"] + token.get(
            "expires_in", 7200
        )

    def access_token_state(self, token: dict[str, Any]) -> str:
        if token.get("revoked"):
            return "revoked"
        return "expired" if _past(token.get("expires_at")) else "active"

    def deploy_token_entity(self, token: dict[str, Any]) -> dict[str, Any]:
        """doc/api/deploy_tokens.md: a deploy token, never its secret."""
        return {
            "id": token["id"],
            "name": token.get("name", f"deploy token {token['id']}"),
            "username": token["username"],
            "expires_at": token.get("expires_at"),
            "scopes": token["scopes"],
            "revoked": bool(token.get("revoked")),
            "expired": _past(token.get("expires_at")),
        }

    # --- repositories and commits -----------------------------------------------------------------

    def commit(
        self,
        project_id: int,
        branch: str,
        files: dict[str, bytes],
        message: str = "",
        author: str = "Administrator",
    ) -> str:
        """A new commit on branch (its parent: the branch's previous commit) whose tree is exactly files."""
        with self.lock:
            parent = self.heads.get(project_id, {}).get(branch)
            made = self.commits.setdefault(project_id, {})
            seed = f"{project_id}:{branch}:{len(made)}:{parent}:{sorted(files.items())}:{time.time_ns()}"
            sha = hashlib.sha1(seed.encode()).hexdigest()
            when = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            title = (message or f"Update {branch}").splitlines()[0]
            project = self.projects[project_id]
            made[sha] = {
                "id": sha,
                "short_id": sha[:8],
                "title": title,
                "message": message or title,
                "author_name": author,
                "author_email": f"{author.lower().replace(' ', '.')}@example.com",
                "authored_date": when,
                "committer_name": author,
                "committer_email": f"{author.lower().replace(' ', '.')}@example.com",
                "committed_date": when,
                "created_at": when,
                "parent_ids": [parent] if parent else [],
                "web_url": f"{self.url}/{project['path_with_namespace']}/-/commit/{sha}",
                "files": dict(files),
            }
            self.heads.setdefault(project_id, {})[branch] = sha
            self.repositories.setdefault(project_id, {})[branch] = dict(files)
            return sha

    def tag(self, project_id: int, tag: str, ref: str) -> str | None:
        """A tag on the commit ref names; None when ref names none."""
        sha = self.commit_sha(project_id, ref)
        if sha is None:
            return None
        with self.lock:
            self.heads.setdefault(project_id, {})[tag] = sha
            self.tags.setdefault(project_id, set()).add(tag)
            self.repositories.setdefault(project_id, {})[tag] = dict(self.commits[project_id][sha]["files"])
        return sha

    def commit_sha(self, project_id: int, ref: str) -> str | None:
        """The sha a branch, tag or (full or short) sha names."""
        if (sha := self.heads.get(project_id, {}).get(ref)) is not None:
            return sha
        made = self.commits.get(project_id, {})
        if ref in made:
            return ref
        if len(ref) >= 7:
            return next((s for s in made if s.startswith(ref)), None)
        return None

    def files_at(self, project_id: int, ref: str) -> dict[str, bytes] | None:
        """The repository's files at a branch, tag or sha; None for an unknown ref."""
        files = self.repositories.get(project_id, {}).get(ref)
        if files is not None:
            return files
        sha = self.commit_sha(project_id, ref)
        return None if sha is None else self.commits[project_id][sha]["files"]

    def history(self, project_id: int, ref: str) -> list[dict[str, Any]]:
        """The commits reachable from ref by first parents, newest first."""
        made, found = self.commits.get(project_id, {}), []
        sha = self.commit_sha(project_id, ref)
        while sha is not None and sha in made:
            found.append(made[sha])
            parents = made[sha]["parent_ids"]
            sha = parents[0] if parents else None
        return found

    # --- CI ID tokens -----------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def mint_id_token(
        self,
        job_token: str,
        audience: str,
        *,
        lifetime: int = 300,
        issuer: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """An ID token for a job, with GitLab's claims (doc/ci/secrets/id_token_authentication.md)."""
        job = self.jobs[job_token]
        project = self.projects[job["project_id"]]
        user = self.users[job["user_id"]]
        now = int(time.time())
        namespace = project["path_with_namespace"].rpartition("/")[0]
        claims_ref = job.get("ref", "main")
        claims = {
            "namespace_id": str(1000 + project["id"]),
            "namespace_path": namespace,
            "project_id": str(project["id"]),
            "project_path": project["path_with_namespace"],
            "user_id": str(user["id"]),
            "user_login": user["username"],
            "user_email": f"{user['username']}@example.com",
            "pipeline_id": str(job["id"] * 10),
            "pipeline_source": "push",
            "job_id": str(job["id"]),
            "ref": job.get("ref", "main"),
            "ref_type": "branch",
            "ref_path": f"refs/heads/{job.get('ref', 'main')}",
            "ref_protected": "true" if job.get("ref_protected") else "false",
            "jti": f"jti-{job['id']}-{now}",
            "iss": issuer or self.url,
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "aud": audience,
            "sub": f"project_path:{project['path_with_namespace']}:ref_type:branch:ref:{claims_ref}",
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})
