"""The GitLab gateway on python-gitlab: the only module that imports it; translates its errors."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import gitlab
import requests
from gitlab import exceptions as gle

from app.errors import GitLabUnavailable, InvalidCredential, ProjectNotFound
from app.gitlab.gateway import AccessTokenInfo
from app.model import AccessLevel, Credential, CredentialKind, Project, ProjectRef, Visibility

INVALID = "GitLab token is invalid, expired or revoked"


class _NotFound(Exception):
    """GitLab answered 403 or 404: the resource is not visible with this credential."""


class PythonGitLabGateway:
    """Calls GitLab with the caller's own credential; never retries (the caller gets a 503 instead)."""

    def __init__(self, *, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._local = threading.local()
        self._session = requests.Session()  # shared: keeps connections to GitLab alive
        self._session.hooks["response"].append(self._remember_retry_after)

    def _remember_retry_after(self, response: requests.Response, *_: Any, **__: Any) -> None:
        self._local.retry_after = response.headers.get("Retry-After")

    def _get(self, credential: Credential | None, path: str) -> dict[str, Any]:
        """GET an API path as the credential; translate every failure into the registry's errors."""
        private_token = (
            credential.secret
            if credential is not None and credential.kind is CredentialKind.ACCESS_TOKEN
            else None
        )
        client = gitlab.Gitlab(
            self._url,
            private_token=private_token,
            timeout=self._timeout,
            session=self._session,
            user_agent="gitlab-data-registry",
        )
        self._local.retry_after = None
        try:
            data = client.http_get(path, obey_rate_limit=False, retry_transient_errors=False)
        except gle.GitlabAuthenticationError:
            raise InvalidCredential(INVALID) from None
        except gle.GitlabError as e:
            code = e.response_code or 0
            if code in (403, 404):
                raise _NotFound from None
            raise GitLabUnavailable(
                f"GitLab answered {code}; try again later", retry_after=self._retry_after()
            ) from None
        except requests.RequestException:
            raise GitLabUnavailable("GitLab is unreachable; try again later") from None
        if not isinstance(data, dict):
            raise GitLabUnavailable("GitLab answered with an unexpected payload")
        return data

    def _retry_after(self) -> int:
        value = getattr(self._local, "retry_after", None)
        try:
            return max(1, min(int(value), 3600)) if value else 30
        except ValueError:
            return 30

    def access_token_info(self, credential: Credential) -> AccessTokenInfo:
        try:
            data = self._get(credential, "/personal_access_tokens/self")
        except _NotFound:
            raise InvalidCredential(INVALID) from None
        expires = data.get("expires_at")
        return AccessTokenInfo(
            user_id=int(data["user_id"]),
            scopes=frozenset(data.get("scopes") or ()),
            active=bool(data.get("active", True)),
            revoked=bool(data.get("revoked", False)),
            expires_at=date.fromisoformat(expires[:10]) if expires else None,
        )

    def project(self, credential: Credential | None, ref: ProjectRef) -> Project:
        encoded = ref.lookup_key.replace("/", "%2F")
        try:
            data = self._get(credential, f"/projects/{encoded}")
        except _NotFound:
            raise ProjectNotFound(f"Project {ref} not found") from None
        return Project(
            id=int(data["id"]),
            path=str(data["path_with_namespace"]),
            visibility=Visibility(data.get("visibility", "private")),
            archived=bool(data.get("archived", False)),
        )

    def member_access_level(self, credential: Credential, project_id: int, user_id: int) -> AccessLevel:
        try:
            data = self._get(credential, f"/projects/{project_id}/members/all/{user_id}")
        except _NotFound:
            return AccessLevel.NO_ACCESS
        level = int(data.get("access_level", 0))
        return max((lvl for lvl in AccessLevel if lvl <= level), default=AccessLevel.NO_ACCESS)
