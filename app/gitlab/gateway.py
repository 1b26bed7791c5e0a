"""What the registry needs from GitLab, as a Protocol with value objects; no HTTP library here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from app.model import AccessLevel, Credential, Project, ProjectRef


@dataclass(frozen=True)
class AccessTokenInfo:
    """GitLab's answer to GET /personal_access_tokens/self."""

    user_id: int
    scopes: frozenset[str]
    active: bool
    revoked: bool
    expires_at: date | None


class GitLabGateway(Protocol):
    """GitLab's REST API as the registry uses it. Errors: InvalidCredential, NotFound, GitLabUnavailable."""

    def access_token_info(self, credential: Credential) -> AccessTokenInfo:
        """Introspect a personal, project or group access token with the token itself."""
        ...

    def project(self, credential: Credential | None, ref: ProjectRef) -> Project:
        """The project as the credential (or an anonymous caller) sees it; ProjectNotFound if invisible."""
        ...

    def member_access_level(self, credential: Credential, project_id: int, user_id: int) -> AccessLevel:
        """The user's effective role (inherited and shared-group membership included)."""
        ...
