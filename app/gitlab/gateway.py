"""What the registry needs from GitLab, as a Protocol with value objects; no HTTP library here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Protocol

from app.model.commits import CommitInfo, CommitState
from app.model.identity import AccessLevel, Credential
from app.model.projects import Project, ProjectRef


@dataclass(frozen=True)
class AccessTokenInfo:
    """GitLab's answer to GET /personal_access_tokens/self."""

    user_id: int
    scopes: frozenset[str]
    active: bool
    revoked: bool
    expires_at: date | None


@dataclass(frozen=True)
class OAuthTokenInfo:
    """GitLab's answer to GET /oauth/token/info."""

    user_id: int
    scopes: frozenset[str]
    expires_at: datetime | None


@dataclass(frozen=True)
class JobInfo:
    """GitLab's answer to GET /job with a job token: the job, its project and the user who triggered it."""

    job_id: int
    status: str
    project_id: int
    user_id: int
    project_path: str | None = None  # from the job's web_url: <instance>/<project path>/-/jobs/<id>
    username: str | None = None  # the user who triggered the job


class ProjectStatus(Enum):
    """What GitLab says about a project id, asked with a credential that sees every project."""

    PRESENT = "present"
    PENDING_DELETION = "pending_deletion"  # marked for delayed deletion: may still be restored
    MISSING = "missing"


@dataclass(frozen=True)
class RepositoryRefs:
    """A repository's branches (the default one first) and tags, first page of each."""

    default: str | None
    branches: list[str]
    tags: list[str]


@dataclass(frozen=True)
class UserInfo:
    """GitLab's answer to GET /user: who holds the credential, and whether they administer GitLab."""

    id: int
    username: str
    is_admin: bool


@dataclass(frozen=True)
class DeployTokenInfo:
    """A deploy token as GitLab's admin token API describes it."""

    id: int
    username: str
    scopes: frozenset[str]
    expires_at: date | None
    revoked: bool
    expired: bool


class GitLabGateway(Protocol):
    """GitLab's REST API as the registry uses it. Errors: InvalidCredential, ProjectNotFound,
    PermissionDenied (the registry's own credential lacks a right), GitLabUnavailable."""

    def access_token_info(self, credential: Credential) -> AccessTokenInfo:
        """Introspect a personal, project or group access token with the token itself."""
        ...

    def oauth_token_info(self, credential: Credential) -> OAuthTokenInfo:
        """Introspect an OAuth access token with the token itself."""
        ...

    def current_user(self, credential: Credential) -> UserInfo:
        """GET /user as the credential."""
        ...

    def project_status(self, service: Credential, project_id: int) -> ProjectStatus:
        """GET /projects/:id with the registry's own credential."""
        ...

    def job(self, credential: Credential) -> JobInfo:
        """The running job a CI job token belongs to; InvalidCredential once the job has finished."""
        ...

    def deploy_token_info(self, service: Credential, token: Credential) -> DeployTokenInfo:
        """Identify a deploy token by its secret (needs an administrator's token: self-managed only)."""
        ...

    def deploy_token_ids(self, service: Credential, project: ProjectRef, path: str | None) -> frozenset[int]:
        """Ids of the deploy tokens of the project (by id or path, empty when there is none) and of every
        group above `path`: the same calls whether the project exists or not."""
        ...

    def project(self, credential: Credential | None, ref: ProjectRef) -> Project:
        """The project as the credential (or an anonymous caller) sees it; ProjectNotFound if invisible."""
        ...

    def member_access_level(self, credential: Credential, project_id: int, user_id: int) -> AccessLevel:
        """The user's effective role (inherited and shared-group membership included)."""
        ...

    def repository_files(self, credential: Credential | None, project_id: int, ref: str) -> list[str]:
        """Paths of every file in the repository at ref (the recursive tree, all pages); [] for an
        unknown ref; PermissionDenied when the caller may not read the code."""
        ...

    def raw_file(self, credential: Credential | None, project_id: int, path: str, ref: str) -> bytes | None:
        """A file of the repository at ref, None when there is none."""
        ...

    def repository_refs(self, credential: Credential | None, project_id: int) -> RepositoryRefs:
        """Branches and tags to choose a ref from."""
        ...

    def commits(
        self,
        credential: Credential | None,
        project_id: int,
        *,
        ref: str,
        path: str | None = None,
        limit: int = 100,
    ) -> list[CommitInfo]:
        """The commits reachable from ref, newest first (at most limit); with path, those that changed
        that file. NotFound for an unknown ref; PermissionDenied when the caller may not read the code."""
        ...

    def commit(self, credential: Credential | None, project_id: int, sha_or_ref: str) -> CommitInfo | None:
        """One commit (a sha, branch or tag), None when there is none."""
        ...

    def set_commit_status(
        self,
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
        """POST /projects/:id/statuses/:sha (the description cut to GitLab's 255 characters); posting the
        state a pending or running status already holds is a no-op (GitLab's 400); PermissionDenied when
        the token may not, NotFound for an unknown commit, GitLabUnavailable when GitLab fails."""
        ...

    def member_projects(self, credential: Credential) -> list[Project]:
        """Every project the credential's user is a member of (directly or through groups), all pages."""
        ...

    def job_token_allows(self, service: Credential, target: ProjectRef, source: Project) -> bool:
        """Whether the target's job-token allowlist lets jobs of the source project in; False when there
        is no such target. The same calls whatever the answer."""
        ...
