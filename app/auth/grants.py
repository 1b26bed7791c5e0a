"""How GitLab vouches for each kind of credential: a credential's Grant on a project (personal, project,
group and OAuth tokens, deploy tokens, CI job tokens, CI ID tokens), and the user behind an admin's token.
Token introspection is cached per token; denials briefly, successes never past the token's expiry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import TypeVar

from app.auth.policy import AuthPolicy
from app.cache import TTLCache
from app.errors import (
    CredentialExpired,
    CredentialRevoked,
    InvalidCredential,
    PermissionDenied,
    ProjectNotFound,
    RegistryError,
)
from app.gitlab.gateway import GitLabGateway, JobInfo, UserInfo
from app.gitlab.id_tokens import IdTokenClaims, IdTokenVerifier, looks_like_jwt
from app.model.identity import AccessLevel, Actor, Credential, CredentialKind, Grant
from app.model.projects import Project, ProjectRef, Visibility

T = TypeVar("T")
INVALID = "GitLab token is invalid, expired or revoked"
_NEEDS_SERVICE = "the registry has no service token (REGISTRY_GITLAB_SERVICE_TOKEN)"
# What an admin's token may be, by how it arrived.
_ADMIN_KINDS = {
    CredentialKind.ACCESS_TOKEN: (CredentialKind.ACCESS_TOKEN,),
    CredentialKind.OAUTH_TOKEN: (CredentialKind.OAUTH_TOKEN,),
    CredentialKind.BEARER: (CredentialKind.ACCESS_TOKEN, CredentialKind.OAUTH_TOKEN),
}


def _midnight(day: date | None) -> datetime | None:
    """GitLab tokens expire at midnight UTC at the start of their expiry date."""
    return datetime.combine(day, time.min, UTC) if day else None


# GitLab's token prefixes: a token that has one is only ever tried as that kind (one GitLab call).
_PREFIXES = {
    "glpat-": CredentialKind.ACCESS_TOKEN,
    "gloas-": CredentialKind.OAUTH_TOKEN,
    "glcbt-": CredentialKind.JOB_TOKEN,
    "gldt-": CredentialKind.DEPLOY_TOKEN,
}
_UNPREFIXED = (CredentialKind.ACCESS_TOKEN, CredentialKind.OAUTH_TOKEN, CredentialKind.JOB_TOKEN)


def _bearer_kinds(secret: str) -> tuple[CredentialKind, ...]:
    """Which kinds to try for a Bearer token: the one its prefix names, else each, most likely first."""
    return next(((kind,) for prefix, kind in _PREFIXES.items() if secret.startswith(prefix)), _UNPREFIXED)


def attempts(credential: Credential) -> int:
    """How many kinds a credential may be tried as: each a GitLab look-up when it is refused."""
    if credential.kind is CredentialKind.BEARER and not looks_like_jwt(credential.secret):
        return len(_bearer_kinds(credential.secret))
    return 2 if _may_be_deploy_token(credential) else 1


def _may_be_deploy_token(credential: Credential) -> bool:
    """HTTP Basic with a username of one's own and no access-token prefix: GitLab lets deploy tokens
    have custom usernames, so such a password is tried as a deploy token when it is no access token."""
    return (
        credential.kind is CredentialKind.ACCESS_TOKEN
        and credential.username is not None
        and not credential.secret.startswith("glpat-")
    )


def first_accepted(
    credential: Credential, kinds: Sequence[CredentialKind], attempt: Callable[[Credential], T]
) -> T:
    """`attempt` with the credential taken as each kind in turn, until GitLab accepts one. A token GitLab
    knows as expired or revoked ends the search (no other kind will do better)."""
    for kind in kinds:
        try:
            return attempt(replace(credential, kind=kind))
        except (CredentialExpired, CredentialRevoked):
            raise
        except InvalidCredential:
            continue
    raise InvalidCredential(INVALID)


class GrantResolver:
    """Asks GitLab, one way per credential kind, what a credential may do on a project."""

    def __init__(
        self,
        gateway: GitLabGateway,
        policy: AuthPolicy,
        *,
        service: Credential | None = None,
        id_tokens: IdTokenVerifier | None = None,
    ) -> None:
        self._gateway = gateway
        self._policy = policy
        self._service = service
        self._id_tokens = id_tokens
        self._tokens: TTLCache[object] = TTLCache(max_size=policy.max_entries)

    def grant_or_denial(
        self, credential: Credential | None, ref: ProjectRef
    ) -> tuple[Grant | RegistryError, float]:
        """GitLab's answer and how long to trust it; GitLabUnavailable is raised, never answered."""
        return self._cached_outcome(lambda: self._grant(credential, ref))

    def admin(self, credential: Credential) -> tuple[Actor, UserInfo]:
        """Who is behind a personal or OAuth token, and the GitLab user (is_admin, username)."""

        def actor(typed: Credential) -> tuple[Actor, Credential]:
            if typed.kind is CredentialKind.ACCESS_TOKEN:
                return self._access_token_actor(typed), typed
            return self._oauth_actor(typed), typed

        found, typed = first_accepted(credential, _ADMIN_KINDS[credential.kind], actor)
        user = self._token(
            CredentialKind.BEARER,  # a key of its own: the user behind the token, whatever its kind
            typed,
            lambda: (self._gateway.current_user(typed), self._ttl(found.expires_at)),
        )
        return found, user

    def identify(self, credential: Credential) -> Actor:
        """Who a credential is, whatever project it names (whoami names the user of a mistyped project
        too), with the username. InvalidCredential when GitLab refuses it; PermissionDenied when the
        registry cannot check it (a deploy token without the service token)."""
        kind = credential.kind
        if kind is CredentialKind.BEARER:
            if looks_like_jwt(credential.secret):
                return self.identify(replace(credential, kind=CredentialKind.ID_TOKEN))
            return first_accepted(credential, _bearer_kinds(credential.secret), self.identify)
        if kind is CredentialKind.DEPLOY_TOKEN:
            return self._deploy_actor(credential)[0]
        if kind is CredentialKind.JOB_TOKEN:
            job = self._running_job(credential)
            return Actor(kind, job.user_id, job_project_id=job.project_id, username=job.username)
        if kind is CredentialKind.ID_TOKEN:
            claims = self._id_claims(credential)
            actor = Actor(
                kind, claims.user_id, expires_at=claims.expires_at, job_project_id=claims.project_id
            )
            return replace(actor, username=claims.username)
        try:  # a personal, project, group or OAuth token: the user behind it, as for an admin
            actor, user = self.admin(credential)
        except (CredentialExpired, CredentialRevoked):
            raise
        except InvalidCredential:
            if self._service is None or not _may_be_deploy_token(credential):
                raise
            return self.identify(replace(credential, kind=CredentialKind.DEPLOY_TOKEN))
        return replace(actor, username=user.username)

    def _cached_outcome(self, fetch: Callable[[], tuple[T, float]]) -> tuple[T | RegistryError, float]:
        """Denials GitLab gave are remembered briefly; GitLabUnavailable is never remembered."""
        try:
            return fetch()
        except (InvalidCredential, ProjectNotFound, PermissionDenied) as denied:
            return denied, self._policy.failure_ttl

    def _token(self, kind: CredentialKind, credential: Credential, fetch: Callable[[], tuple[T, float]]) -> T:
        """Token introspection, cached per token (shared by every project the token is used on)."""
        value, _ = self._tokens.load((kind, credential.fingerprint), lambda: self._cached_outcome(fetch))
        if isinstance(value, RegistryError):
            raise type(value)(value.message)
        return value  # type: ignore[return-value]

    def _ttl(self, expires_at: datetime | None, limit: float | None = None) -> float:
        ttl = min(self._policy.success_ttl, limit if limit is not None else self._policy.success_ttl)
        if expires_at is not None:
            ttl = min(ttl, (expires_at - datetime.now(UTC)).total_seconds())
        return ttl

    def _grant(self, credential: Credential | None, ref: ProjectRef) -> tuple[Grant, float]:
        if credential is None:
            try:
                project = self._gateway.project(None, ref)
            except ProjectNotFound:
                raise ProjectNotFound(
                    f"Project {ref} not found, or it needs a GitLab token to read"
                ) from None
            return Grant(project=project, actor=None), self._policy.success_ttl
        match credential.kind:
            case CredentialKind.BEARER:
                return self._bearer_grant(credential, ref)
            case CredentialKind.ACCESS_TOKEN:
                try:
                    return self._user_grant(credential, self._access_token_actor(credential), ref)
                except (CredentialExpired, CredentialRevoked):
                    raise
                except InvalidCredential:
                    if self._service is None or not _may_be_deploy_token(credential):
                        raise
                    # Basic with a custom deploy-token username: GitLab allows those too.
                    return self._deploy_grant(replace(credential, kind=CredentialKind.DEPLOY_TOKEN), ref)
            case CredentialKind.OAUTH_TOKEN:
                return self._user_grant(credential, self._oauth_actor(credential), ref)
            case CredentialKind.DEPLOY_TOKEN:
                return self._deploy_grant(credential, ref)
            case CredentialKind.JOB_TOKEN:
                return self._job_grant(credential, ref)
            case CredentialKind.ID_TOKEN:
                return self._id_token_grant(credential, ref)

    def _bearer_grant(self, credential: Credential, ref: ProjectRef) -> tuple[Grant, float]:
        if looks_like_jwt(credential.secret):
            return self._id_token_grant(replace(credential, kind=CredentialKind.ID_TOKEN), ref)
        return first_accepted(
            credential, _bearer_kinds(credential.secret), lambda typed: self._grant(typed, ref)
        )

    def _user_grant(self, credential: Credential, actor: Actor, ref: ProjectRef) -> tuple[Grant, float]:
        """A user's token: the project and the user's effective role, both asked with the token itself."""
        assert actor.user_id is not None
        project = self._gateway.project(credential, ref)
        role = self._gateway.member_access_level(credential, project.id, actor.user_id)
        return Grant(project=project, actor=actor, role=role), self._ttl(actor.expires_at)

    def _access_token_actor(self, credential: Credential) -> Actor:
        info = self._token(
            CredentialKind.ACCESS_TOKEN,
            credential,
            lambda: (self._gateway.access_token_info(credential), self._policy.success_ttl),
        )
        if info.revoked:
            raise CredentialRevoked("GitLab token has been revoked")
        expires_at = _midnight(info.expires_at)
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise CredentialExpired(f"GitLab token expired on {info.expires_at}")
        if not info.active:
            raise InvalidCredential("GitLab token is not active")
        return Actor(CredentialKind.ACCESS_TOKEN, info.user_id, info.scopes, expires_at)

    def _oauth_actor(self, credential: Credential) -> Actor:
        info = self._token(
            CredentialKind.OAUTH_TOKEN,
            credential,
            lambda: (self._gateway.oauth_token_info(credential), self._policy.success_ttl),
        )
        if info.expires_at is not None and info.expires_at <= datetime.now(UTC):
            raise InvalidCredential("OAuth token has expired")
        return Actor(CredentialKind.OAUTH_TOKEN, info.user_id, info.scopes, info.expires_at)

    def _project_or_none(self, service: Credential, ref: ProjectRef) -> Project | None:
        try:
            return self._gateway.project(service, ref)
        except ProjectNotFound:
            return None

    # Deploy, job and ID tokens are checked with the registry's service token, which sees every project.
    # A project such a token may not see must cost GitLab the calls a missing one costs, take as long
    # and be cached alike (a denial, for the failure TTL): what is asked about another project is asked
    # whether it was found or not (by the path or id the client gave when it was not), and "not found"
    # is answered here for both. One difference remains: a deploy token naming a project by numeric id
    # costs the groups above a hidden project, which tells that the id exists (ids are sequential and
    # no secret; the path, the name, is never told).

    def _deploy_actor(self, credential: Credential) -> tuple[Actor, int, Credential]:
        """The deploy token as GitLab describes it, its id, and the service token it was asked with (the
        only way to ask)."""
        service = self._service
        if service is None:
            raise PermissionDenied(f"Deploy tokens cannot be checked: {_NEEDS_SERVICE}")
        info = self._token(
            CredentialKind.DEPLOY_TOKEN,
            credential,
            lambda: (self._gateway.deploy_token_info(service, credential), self._policy.success_ttl),
        )
        if info.revoked:
            raise CredentialRevoked("Deploy token has been revoked")
        expires_at = _midnight(info.expires_at)
        if info.expired or (expires_at is not None and expires_at <= datetime.now(UTC)):
            raise CredentialExpired(f"Deploy token expired on {info.expires_at}")
        actor = Actor(CredentialKind.DEPLOY_TOKEN, None, info.scopes, expires_at, username=info.username)
        return actor, info.id, service

    def _deploy_grant(self, credential: Credential, ref: ProjectRef) -> tuple[Grant, float]:
        actor, token_id, service = self._deploy_actor(credential)
        project = self._project_or_none(service, ref)
        owners = self._gateway.deploy_token_ids(
            service, ProjectRef(id=project.id) if project else ref, project.path if project else ref.path
        )
        if project is None or token_id not in owners:
            if project is None or project.visibility is Visibility.PRIVATE:
                raise ProjectNotFound(f"Project {ref} not found")  # what GitLab says of both
            raise PermissionDenied(f"This deploy token does not give access to {project.path}")
        return Grant(project=project, actor=actor), self._ttl(actor.expires_at)

    def _own_project(self, ref: ProjectRef, own_id: int, own_path: str | None) -> Project:
        """Without a service token, a CI token can name only the job's own project (by id, or by the path
        GitLab gave for the job); its visibility and archived state are unknown, private is assumed."""
        own = ref.id == own_id or (
            ref.path is not None and own_path is not None and ref.path.lower() == own_path.lower()
        )  # GitLab's paths are case-insensitive
        if own:
            return Project(id=own_id, path=own_path or str(ref), visibility=Visibility.PRIVATE)
        raise PermissionDenied(
            f"CI tokens reach other projects than their own ({own_path or f'project {own_id}'}), such as"
            f" {ref}, only when {_NEEDS_SERVICE.replace('has no', 'has a')}"
        )

    def _running_job(self, credential: Credential) -> JobInfo:
        job = self._token(
            CredentialKind.JOB_TOKEN,
            credential,
            lambda: (self._gateway.job(credential), self._policy.job_token_ttl),
        )
        if job.status != "running":
            raise InvalidCredential(f"CI job token belongs to a job that is {job.status}, no longer running")
        return job

    def _job_grant(self, credential: Credential, ref: ProjectRef) -> tuple[Grant, float]:
        job = self._running_job(credential)
        actor = Actor(CredentialKind.JOB_TOKEN, job.user_id, job_project_id=job.project_id)
        ttl = self._ttl(None, limit=self._policy.job_token_ttl)
        service = self._service
        if service is None:  # a user who can run the project's pipelines is at least a Developer
            own = self._own_project(ref, job.project_id, job.project_path)
            return Grant(project=own, actor=actor, role=AccessLevel.DEVELOPER, allowlisted=True), ttl
        project = self._project_or_none(service, ref)
        if project is not None and project.id == job.project_id:
            role = self._gateway.member_access_level(service, project.id, job.user_id)
            return Grant(project=project, actor=actor, role=role, allowlisted=True), ttl
        source = (  # an allowlist names projects and groups: the id and path are what matter
            Project(id=job.project_id, path=job.project_path, visibility=Visibility.PRIVATE)
            if job.project_path
            else self._gateway.project(service, ProjectRef(id=job.project_id))
        )
        allowlisted = self._gateway.job_token_allows(
            service, ProjectRef(id=project.id) if project else ref, source
        )
        if project is None or (project.visibility is Visibility.PRIVATE and not allowlisted):
            raise ProjectNotFound(f"Project {ref} not found")
        role = self._gateway.member_access_level(service, project.id, job.user_id)
        return Grant(project=project, actor=actor, role=role, allowlisted=allowlisted), ttl

    def _id_claims(self, credential: Credential) -> IdTokenClaims:
        verifier = self._id_tokens
        if verifier is None:
            raise InvalidCredential("CI ID tokens are not accepted: set REGISTRY_ID_TOKEN_AUDIENCE")
        claims = self._token(
            CredentialKind.ID_TOKEN,
            credential,
            lambda: (verifier.verify(credential.secret), self._policy.success_ttl),
        )
        if claims.expires_at <= datetime.now(UTC):
            raise InvalidCredential("CI ID token has expired")
        return claims

    def _id_token_grant(self, credential: Credential, ref: ProjectRef) -> tuple[Grant, float]:
        claims = self._id_claims(credential)
        actor = Actor(
            CredentialKind.ID_TOKEN,
            claims.user_id,
            expires_at=claims.expires_at,
            job_project_id=claims.project_id,
            protected_ref=claims.protected_ref,
        )
        ttl = self._ttl(claims.expires_at)
        service = self._service
        if service is None:
            mine = self._own_project(ref, claims.project_id, claims.project_path)
            return Grant(project=mine, actor=actor, role=AccessLevel.DEVELOPER), ttl
        project = self._project_or_none(service, ref)
        own = project is not None and project.id == claims.project_id
        if project is None or (not own and project.visibility is Visibility.PRIVATE):
            raise ProjectNotFound(f"Project {ref} not found")
        # ID tokens reach their own project only (access.py says so of the others): no role to ask there.
        role = (
            self._gateway.member_access_level(service, project.id, claims.user_id)
            if own
            else AccessLevel.NO_ACCESS
        )
        return Grant(project=project, actor=actor, role=role), ttl
