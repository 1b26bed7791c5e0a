"""The GitLab gateway on python-gitlab: the only module that imports it; translates its errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import gitlab
import requests
from gitlab import exceptions as gle

from app.errors import (
    CredentialExpired,
    CredentialRevoked,
    GitLabUnavailable,
    InvalidCredential,
    PermissionDenied,
    ProjectNotFound,
)
from app.gitlab.answers import GitLabForbidden as _Forbidden
from app.gitlab.answers import GitLabNotFound as _NotFound
from app.gitlab.answers import GitLabStateHeld
from app.gitlab.answers import encode_path as _encode
from app.gitlab.commits import CommitCalls
from app.gitlab.gateway import (
    AccessTokenInfo,
    DeployTokenInfo,
    JobInfo,
    OAuthTokenInfo,
    ProjectStatus,
    RepositoryRefs,
    UserInfo,
)
from app.model.identity import AccessLevel, Credential, CredentialKind
from app.model.projects import PENDING_DELETION, Project, ProjectRef, Visibility

INVALID = "GitLab token is invalid, expired or revoked"


def _refusal(body: bytes | None) -> InvalidCredential:
    """GitLab's 401 says why for tokens it knows (lib/api/api_guard.rb): expired or revoked."""
    try:
        description = str(json.loads(body or b"{}").get("error_description", "")).lower()
    except (ValueError, AttributeError):
        description = ""
    if "expired" in description:
        return CredentialExpired("GitLab token has expired")
    if "revoked" in description:
        return CredentialRevoked("GitLab token has been revoked")
    return InvalidCredential(INVALID)


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


class PythonGitLabGateway(CommitCalls):
    """Calls GitLab as the caller (or as the registry's service token); never retries: the client gets
    a 503 with Retry-After instead."""

    def __init__(self, *, url: str, timeout: float, observe: Callable[[int], None] | None = None) -> None:
        self._url = url
        self._timeout = timeout
        self._local = threading.local()
        self._session = requests.Session()  # shared: keeps connections to GitLab alive
        self._session.hooks["response"].append(self._remember_retry_after)
        if observe is not None:  # every answer GitLab gives, by status (metrics)
            self._session.hooks["response"].append(lambda response, *_, **__: observe(response.status_code))

    def _remember_retry_after(self, response: requests.Response, *_: Any, **__: Any) -> None:
        self._local.retry_after = response.headers.get("Retry-After")

    def _client(self, credential: Credential | None) -> gitlab.Gitlab:
        kind = credential.kind if credential is not None else None
        secret = credential.secret if credential is not None else None
        return gitlab.Gitlab(
            self._url,
            private_token=secret if kind is CredentialKind.ACCESS_TOKEN else None,
            oauth_token=secret if kind is CredentialKind.OAUTH_TOKEN else None,
            job_token=secret if kind is CredentialKind.JOB_TOKEN else None,
            timeout=self._timeout,
            session=self._session,
            user_agent="gitlab-data-registry",
        )

    def _call(self, credential: Credential | None, method: str, path: str, **kwargs: Any) -> Any:
        """One API call as the credential; every failure becomes one of the registry's errors."""
        client = self._client(credential)
        self._local.retry_after = None
        options: dict[str, Any] = {"obey_rate_limit": False, "retry_transient_errors": False, **kwargs}
        try:
            if method == "list":
                return client.http_list(path, get_all=True, **options)
            if method == "post":
                return client.http_post(path, **options)
            return client.http_get(path, **options)
        except gle.GitlabAuthenticationError as e:
            raise _refusal(e.response_body) from None
        except gle.GitlabError as e:
            code = e.response_code or 0
            if code == 403:
                raise _Forbidden from None
            if code == 404:
                raise _NotFound from None
            if code == 400 and b"Cannot transition status" in (e.response_body or b""):
                raise GitLabStateHeld from None
            raise GitLabUnavailable(
                f"GitLab answered {code}; try again later", retry_after=self._retry_after()
            ) from None
        except requests.RequestException:
            raise GitLabUnavailable("GitLab is unreachable; try again later") from None

    def _as_service(self, service: Credential, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self._call(service, method, path, **kwargs)
        except InvalidCredential:
            raise GitLabUnavailable(
                "GitLab refused the registry's service token (REGISTRY_GITLAB_SERVICE_TOKEN)", retry_after=300
            ) from None

    def _retry_after(self) -> int:
        value = getattr(self._local, "retry_after", None)
        try:
            return max(1, min(int(value), 3600)) if value else 30
        except ValueError:
            return 30

    def access_token_info(self, credential: Credential) -> AccessTokenInfo:
        try:
            data = self._call(credential, "get", "/personal_access_tokens/self")
        except (_NotFound, _Forbidden):
            raise InvalidCredential(INVALID) from None
        return AccessTokenInfo(
            user_id=int(data["user_id"]),
            scopes=frozenset(data.get("scopes") or ()),
            active=bool(data.get("active", True)),
            revoked=bool(data.get("revoked", False)),
            expires_at=_date(data.get("expires_at")),
        )

    def current_user(self, credential: Credential) -> UserInfo:
        try:
            data = self._call(credential, "get", "/user")
        except (_NotFound, _Forbidden):
            raise InvalidCredential(INVALID) from None
        return UserInfo(
            id=int(data["id"]), username=str(data["username"]), is_admin=bool(data.get("is_admin", False))
        )

    def oauth_token_info(self, credential: Credential) -> OAuthTokenInfo:
        # Not an API v4 path, so python-gitlab has no call for it (research: gitlab-auth-and-hooks E).
        try:
            response = self._session.get(
                f"{self._url}/oauth/token/info",
                headers={"Authorization": f"Bearer {credential.secret}"},
                timeout=self._timeout,
            )
        except requests.RequestException:
            raise GitLabUnavailable("GitLab is unreachable; try again later") from None
        if response.status_code in (400, 401, 403, 404):
            raise InvalidCredential(INVALID)
        if response.status_code != 200:
            raise GitLabUnavailable(
                f"GitLab answered {response.status_code}; try again later", retry_after=self._retry_after()
            )
        data = response.json()
        scopes = data.get("scope") or data.get("scopes") or ()
        expires_in = data.get("expires_in") or data.get("expires_in_seconds")
        return OAuthTokenInfo(
            user_id=int(data["resource_owner_id"]),
            scopes=frozenset(scopes.split() if isinstance(scopes, str) else scopes),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None,
        )

    def job(self, credential: Credential) -> JobInfo:
        try:
            data = self._call(credential, "get", "/job")
        except (_NotFound, _Forbidden, InvalidCredential):
            raise InvalidCredential("CI job token is invalid, or its job is no longer running") from None
        return JobInfo(
            job_id=int(data["id"]),
            status=str(data.get("status", "")),
            project_id=int(data["pipeline"]["project_id"]),
            user_id=int(data["user"]["id"]),
            project_path=self._project_path_of(str(data.get("web_url") or "")),
            username=data["user"].get("username"),
        )

    def _project_path_of(self, web_url: str) -> str | None:
        """The project's full path in a job's web_url, under this instance's own path (a GitLab served
        under a relative URL root such as /gitlab); None when the URL has no job path."""
        path, marker, _ = unquote(urlsplit(web_url).path).partition("/-/jobs/")
        root = urlsplit(self._url).path.rstrip("/")
        if not marker or not path.startswith(root + "/"):
            return None
        return path[len(root) + 1 :] or None

    def deploy_token_info(self, service: Credential, token: Credential) -> DeployTokenInfo:
        try:
            data = self._as_service(service, "post", "/admin/token", post_data={"token": token.secret})
        except _NotFound:
            raise InvalidCredential("Deploy token is invalid, expired or revoked") from None
        except _Forbidden:
            raise PermissionDenied(
                "Deploy tokens cannot be checked: the registry's service token is not an administrator's"
            ) from None
        if "scopes" not in data or "username" not in data:  # another kind of token
            raise InvalidCredential("Deploy token is invalid, expired or revoked")
        return DeployTokenInfo(
            id=int(data["id"]),
            username=str(data["username"]),
            scopes=frozenset(data.get("scopes") or ()),
            expires_at=_date(data.get("expires_at")),
            revoked=bool(data.get("revoked", False)),
            expired=bool(data.get("expired", False)),
        )

    def deploy_token_ids(self, service: Credential, project: ProjectRef, path: str | None) -> frozenset[int]:
        paths = [f"/projects/{_encode(project.lookup_key)}/deploy_tokens"]
        groups = path.split("/")[:-1] if path else []
        paths += [f"/groups/{_encode('/'.join(groups[:n]))}/deploy_tokens" for n in range(1, len(groups) + 1)]
        ids: set[int] = set()
        for found in self._each_as_service(service, "list", paths):
            ids.update(int(token["id"]) for token in found or ())
        return frozenset(ids)

    def _each_as_service(self, service: Credential, method: str, paths: list[str]) -> list[Any]:
        """Every path asked, in order, whatever the others answered (None for a 404 or 403: a project or
        group that is not there, or a user namespace), so that the cost never depends on the answers."""
        answers: list[Any] = []
        for path in paths:
            try:
                answers.append(self._as_service(service, method, path))
            except (_NotFound, _Forbidden):
                answers.append(None)
        return answers

    def project(self, credential: Credential | None, ref: ProjectRef) -> Project:
        try:
            data = self._call(credential, "get", f"/projects/{_encode(ref.lookup_key)}")
        except (_NotFound, _Forbidden):
            raise ProjectNotFound(f"Project {ref} not found") from None
        return Project(
            id=int(data["id"]),
            path=str(data["path_with_namespace"]),
            visibility=Visibility(data.get("visibility", "private")),
            archived=bool(data.get("archived", False)),
        )

    def repository_files(self, credential: Credential | None, project_id: int, ref: str) -> list[str]:
        try:
            entries = self._call(
                credential,
                "list",
                f"/projects/{project_id}/repository/tree",
                query_data={"recursive": True, "ref": ref, "per_page": 100},
            )
        except _NotFound:
            return []
        except _Forbidden:
            raise PermissionDenied("You cannot read this project's repository") from None
        return [str(e["path"]) for e in entries if e.get("type") == "blob"]

    def raw_file(self, credential: Credential | None, project_id: int, path: str, ref: str) -> bytes | None:
        try:
            response = self._call(
                credential,
                "get",
                f"/projects/{project_id}/repository/files/{_encode(path)}/raw",
                query_data={"ref": ref},
                raw=True,
            )
        except _NotFound:
            return None
        except _Forbidden:
            raise PermissionDenied("You cannot read this project's repository") from None
        return bytes(response.content)

    def repository_refs(self, credential: Credential | None, project_id: int) -> RepositoryRefs:
        try:
            branches = self._call(
                credential, "get", f"/projects/{project_id}/repository/branches", query_data={"per_page": 100}
            )
            tags = self._call(
                credential, "get", f"/projects/{project_id}/repository/tags", query_data={"per_page": 100}
            )
        except (_NotFound, _Forbidden):
            return RepositoryRefs(default=None, branches=[], tags=[])
        default = next((str(b["name"]) for b in branches if b.get("default")), None)
        names = sorted(str(b["name"]) for b in branches)
        if default is not None:
            names = [default, *(n for n in names if n != default)]
        return RepositoryRefs(default=default, branches=names, tags=[str(t["name"]) for t in tags])

    def member_projects(self, credential: Credential) -> list[Project]:
        pages = self._call(
            credential, "list", "/projects", query_data={"membership": True, "simple": True, "per_page": 100}
        )
        return [
            Project(
                id=int(data["id"]),
                path=str(data["path_with_namespace"]),
                visibility=Visibility(data.get("visibility", "private")),
                archived=bool(data.get("archived", False)),
            )
            for data in pages
        ]

    def project_status(self, service: Credential, project_id: int) -> ProjectStatus:
        try:
            data = self._call(service, "get", f"/projects/{project_id}")
        except _NotFound:
            return ProjectStatus.MISSING
        except _Forbidden:
            raise PermissionDenied("The service token may not read projects") from None
        marked = data.get("marked_for_deletion_on") or data.get("marked_for_deletion_at")
        if marked or PENDING_DELETION.search(str(data.get("path_with_namespace", ""))):
            return ProjectStatus.PENDING_DELETION
        return ProjectStatus.PRESENT

    def member_access_level(self, credential: Credential, project_id: int, user_id: int) -> AccessLevel:
        try:
            data = self._call(credential, "get", f"/projects/{project_id}/members/all/{user_id}")
        except (_NotFound, _Forbidden):
            return AccessLevel.NO_ACCESS
        level = int(data.get("access_level", 0))
        return max((lvl for lvl in AccessLevel if lvl <= level), default=AccessLevel.NO_ACCESS)

    def job_token_allows(self, service: Credential, target: ProjectRef, source: Project) -> bool:
        base = f"/projects/{_encode(target.lookup_key)}/job_token_scope"
        (scope,) = self._each_as_service(service, "get", [base])
        allowlist, groups = self._each_as_service(
            service, "list", [f"{base}/allowlist", f"{base}/groups_allowlist"]
        )
        if scope is None:
            return False  # no such project
        if not scope.get("inbound_enabled", True):
            return True  # the allowlist is switched off: every project's jobs may come in
        if any(int(p["id"]) == source.id for p in allowlist or ()):
            return True
        return any(source.path.startswith(str(g["full_path"]) + "/") for g in groups or ())
