"""Who calls and what GitLab lets them do: roles, actions, credentials, actors, grants, diagnoses and
signed-in browsers."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from app.model.projects import Project


class AccessLevel(enum.IntEnum):
    """GitLab's role values (doc/api/members.md, "Roles")."""

    NO_ACCESS = 0
    MINIMAL_ACCESS = 5
    GUEST = 10
    PLANNER = 15
    REPORTER = 20
    DEVELOPER = 30
    MAINTAINER = 40
    OWNER = 50
    ADMIN = 60

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").title()


class Action(enum.Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"


class CredentialKind(enum.Enum):
    """How a credential must be validated; set by how it arrived (prefixes are only hints)."""

    ACCESS_TOKEN = "access token"  # noqa: S105 - personal, project and group access tokens
    OAUTH_TOKEN = "OAuth token"  # noqa: S105
    DEPLOY_TOKEN = "deploy token"  # noqa: S105
    JOB_TOKEN = "CI job token"  # noqa: S105
    ID_TOKEN = "CI ID token"  # noqa: S105 - a JWT from `id_tokens:` in .gitlab-ci.yml
    BEARER = "bearer token"  # arrived as `Authorization: Bearer`; resolved by asking GitLab


@dataclass(frozen=True)
class Credential:
    """A secret presented by a client. The secret never appears in repr or logs."""

    kind: CredentialKind
    secret: str = field(repr=False)
    username: str | None = None
    origin: str | None = field(default=None, compare=False)  # the client address it came from

    @property
    def fingerprint(self) -> str:
        """sha256 of the secret: the cache key, safe to keep in memory and to log."""
        return hashlib.sha256(self.secret.encode()).hexdigest()


@dataclass(frozen=True)
class Actor:
    """Who is calling, as GitLab told us: a user (or bot, or deploy token) and what the credential may do."""

    kind: CredentialKind
    user_id: int | None  # None for deploy tokens, which belong to no user
    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    job_project_id: int | None = None  # job and ID tokens: the project whose CI job holds the token
    protected_ref: bool | None = None  # ID tokens: whether the job ran for a protected branch or tag
    username: str | None = None  # known when asked for (whoami): the user's, or the deploy token's own


@dataclass(frozen=True)
class Grant:
    """What GitLab says about an actor on a project; access.py turns it into a decision per action."""

    project: Project
    actor: Actor | None  # None: anonymous
    role: AccessLevel = AccessLevel.NO_ACCESS  # the user's effective role (job and ID tokens: the job's user)
    # Job tokens: the project's job-token allowlist lets the job's project in (always true for its own).
    allowlisted: bool = False


@dataclass(frozen=True)
class Diagnosis:
    """What a credential may do on a project and why not: for `whoami` and `data-registry doctor`."""

    grant: Grant | None  # None when the caller may not even read (then who they are stays unsaid)
    refusals: dict[Action, str | None]  # per action: None when allowed, else the reason
    actor: Actor | None = None  # who the credential is, whatever the project (a mistyped one included)
    unverified: str | None = None  # why the credential could not be checked at all, when it could not


@dataclass(frozen=True)
class OAuthTokens:
    """What GitLab's OAuth token endpoint answered: the access token (2 hours on GitLab) and its refresh
    token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class BrowserSession:
    """A signed-in browser, as the server keeps it (the browser holds only a random cookie)."""

    id_hash: str
    user_id: int
    username: str
    tokens: OAuthTokens
    csrf_token: str = field(repr=False)
    expires_at: datetime
