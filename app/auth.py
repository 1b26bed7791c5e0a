"""Turns a credential and a project into a Grant through GitLab, one way per credential kind, cached by
the credential's sha256 (never past the token's own expiry), with a stale grace for reads when GitLab
is down."""

from __future__ import annotations

import hashlib
import json
import logging
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import TypeVar

from app.access import decide, decide_admin
from app.cache import TTLCache
from app.db.shared_cache import SharedAuthCache
from app.errors import (
    AuthenticationRequired,
    CredentialExpired,
    CredentialRevoked,
    GitLabUnavailable,
    InvalidCredential,
    PermissionDenied,
    ProjectNotFound,
    RegistryError,
)
from app.gitlab.gateway import GitLabGateway, UserInfo
from app.gitlab.id_tokens import IdTokenVerifier, looks_like_jwt
from app.model import (
    AccessLevel,
    Action,
    Actor,
    Credential,
    CredentialKind,
    Grant,
    Project,
    ProjectRef,
    Visibility,
)

T = TypeVar("T")
LEASE_SECONDS = 10  # how long other processes wait for the one asking GitLab
log = logging.getLogger(__name__)
INVALID = "GitLab token is invalid, expired or revoked"
_NEEDS_SERVICE = "the registry has no service token (REGISTRY_GITLAB_SERVICE_TOKEN)"


@dataclass(frozen=True)
class AuthPolicy:
    """How long GitLab's answers are trusted, and what anonymous callers and CI jobs may do."""

    success_ttl: float = 300
    failure_ttl: float = 10
    job_token_ttl: float = 60
    stale_grace: float = 600
    max_entries: int = 10_000
    anonymous_reads: bool = True
    id_token_protected_writes: bool = False
    admin_users: frozenset[str] = frozenset()


def _midnight(day: date | None) -> datetime | None:
    """GitLab tokens expire at midnight UTC at the start of their expiry date."""
    return datetime.combine(day, time.min, UTC) if day else None


def _bearer_order(secret: str) -> tuple[CredentialKind, ...]:
    """Which kinds to try for a Bearer token, most likely first; prefixes only reorder the attempts."""
    if secret.startswith("glcbt-"):
        return (CredentialKind.JOB_TOKEN, CredentialKind.ACCESS_TOKEN, CredentialKind.OAUTH_TOKEN)
    return (CredentialKind.ACCESS_TOKEN, CredentialKind.OAUTH_TOKEN, CredentialKind.JOB_TOKEN)


class Authorizer:
    """Answers "may this credential do this on that project?" with at most one GitLab round per TTL."""

    def __init__(
        self,
        gateway: GitLabGateway,
        policy: AuthPolicy,
        *,
        service: Credential | None = None,
        id_tokens: IdTokenVerifier | None = None,
        shared: SharedAuthCache | None = None,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._gateway = gateway
        self._policy = policy
        self._service = service
        self._id_tokens = id_tokens
        self._shared = shared
        self._observe = observe or (lambda _: None)  # where each answer came from: local, shared, gitlab
        self._grants: TTLCache[Grant | RegistryError] = TTLCache(max_size=policy.max_entries)
        self._tokens: TTLCache[object] = TTLCache(max_size=policy.max_entries)

    def authorize(self, credential: Credential | None, ref: ProjectRef, action: Action) -> Grant:
        """The caller's grant on the project if it allows the action; raise the reason otherwise."""
        key = (credential.fingerprint if credential else None, ref.lookup_key)
        loaded = []

        def load() -> tuple[Grant | RegistryError, float]:
            loaded.append(True)
            return self._load(credential, ref)

        try:
            grant = self._grants.load(key, load)
            if not loaded:
                self._observe("local")
        except GitLabUnavailable:
            stale = self._stale(key) if action is Action.READ else None
            if stale is None:
                raise
            log.warning("GitLab unavailable: serving a read from a permission cached earlier")
            grant = stale
        if isinstance(grant, RegistryError):
            raise type(grant)(grant.message)
        decide(
            grant,
            action,
            anonymous_reads=self._policy.anonymous_reads,
            id_token_protected_writes=self._policy.id_token_protected_writes,
        )
        return grant

    def authorize_admin(self, credential: Credential | None, action: Action) -> UserInfo:
        """The GitLab user behind a personal/OAuth token if they may use the admin endpoints for the
        action; raise the reason otherwise. CI, deploy and ID tokens never administer."""
        if credential is None:
            raise AuthenticationRequired("Admin endpoints need a GitLab administrator's token")
        if credential.kind not in (
            CredentialKind.ACCESS_TOKEN,
            CredentialKind.OAUTH_TOKEN,
            CredentialKind.BEARER,
        ):
            raise PermissionDenied("Admin endpoints need a personal access token or an OAuth token")
        kinds = {
            CredentialKind.ACCESS_TOKEN: (CredentialKind.ACCESS_TOKEN,),
            CredentialKind.OAUTH_TOKEN: (CredentialKind.OAUTH_TOKEN,),
            CredentialKind.BEARER: (CredentialKind.ACCESS_TOKEN, CredentialKind.OAUTH_TOKEN),
        }[credential.kind]
        for kind in kinds:
            typed = replace(credential, kind=kind)
            try:
                if kind is CredentialKind.ACCESS_TOKEN:
                    actor = self._access_token_actor(typed)
                else:
                    actor = self._oauth_actor(typed)
                break
            except (CredentialExpired, CredentialRevoked):
                raise
            except InvalidCredential:
                if kind is kinds[-1]:
                    raise
        user = self._token(
            CredentialKind.BEARER,  # a key of its own: the user behind the token, whatever its kind
            typed,
            lambda: (self._gateway.current_user(typed), self._ttl(actor.expires_at)),
        )
        decide_admin(actor, user.is_admin, user.username, action, self._policy.admin_users)
        return user

    def _shared_key(self, key: tuple[str | None, str]) -> str:
        return hashlib.sha256(f"{key[0] or 'anonymous'}\n{key[1]}".encode()).hexdigest()

    def _load(self, credential: Credential | None, ref: ProjectRef) -> tuple[Grant | RegistryError, float]:
        """GitLab's answer from the shared cache, or asked by exactly one process and stored there."""

        def ask() -> tuple[Grant | RegistryError, float]:
            self._observe("gitlab")
            return self._cached_outcome(lambda: self._grant(credential, ref))

        shared = self._shared
        if shared is None:
            return ask()
        key = self._shared_key((credential.fingerprint if credential else None, ref.lookup_key))
        deadline = clock.monotonic() + LEASE_SECONDS
        while True:
            entry = shared.get(key)
            now = clock.time()
            if entry is not None and entry.expires_at > now:
                self._observe("shared")
                return _decode(entry.payload), entry.expires_at - now
            if shared.claim(key, LEASE_SECONDS) or clock.monotonic() > deadline:
                break  # ours to ask (or the holder of the lease is stuck)
            clock.sleep(0.02)  # another process is asking GitLab right now
        try:
            value, ttl = ask()
        except BaseException:
            shared.release(key)
            raise
        grace = self._policy.stale_grace if isinstance(value, Grant) else 0
        shared.put(key, _encode(value), ttl=ttl, stale_grace=grace)
        return value, ttl

    def _stale(self, key: tuple[str | None, str]) -> Grant | None:
        """A grant that expired less than the stale grace ago, from this process or the shared cache."""
        stale = self._grants.stale(key, self._policy.stale_grace)
        if stale is None and self._shared is not None:
            entry = self._shared.get(self._shared_key(key))
            if entry is not None and entry.stale_until > clock.time():
                stale = _decode(entry.payload)
        return stale if isinstance(stale, Grant) else None

    def _cached_outcome(self, fetch: Callable[[], tuple[T, float]]) -> tuple[T | RegistryError, float]:
        """Denials GitLab gave are remembered briefly; GitLabUnavailable is never remembered."""
        try:
            return fetch()
        except (InvalidCredential, ProjectNotFound, PermissionDenied) as denied:
            return denied, self._policy.failure_ttl

    def _token(self, kind: CredentialKind, credential: Credential, fetch: Callable[[], tuple[T, float]]) -> T:
        """Token introspection, cached per token (shared by every project the token is used on)."""
        value = self._tokens.load((kind, credential.fingerprint), lambda: self._cached_outcome(fetch))
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
                    if credential.username is None or self._service is None:
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
        for kind in _bearer_order(credential.secret):
            try:
                return self._grant(replace(credential, kind=kind), ref)
            except (CredentialExpired, CredentialRevoked):
                raise  # GitLab knows the token and said why: no other kind will do better
            except InvalidCredential:
                continue
        raise InvalidCredential(INVALID)

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

    def _deploy_grant(self, credential: Credential, ref: ProjectRef) -> tuple[Grant, float]:
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
        project = self._gateway.project(service, ref)
        if info.id not in self._gateway.deploy_token_ids(service, project):
            raise PermissionDenied(f"This deploy token does not give access to {project.path}")
        actor = Actor(CredentialKind.DEPLOY_TOKEN, None, info.scopes, expires_at)
        return Grant(project=project, actor=actor), self._ttl(expires_at)

    def _ci_project(self, ref: ProjectRef, own_id: int, own_path: str | None) -> Project:
        """The target of a CI token. Without a service token only the job's own project can be named."""
        if self._service is not None:
            return self._gateway.project(self._service, ref)
        if ref.id == own_id or (ref.path is not None and ref.path == own_path):
            # Visibility and archived state are unknown here; private (the strictest) is assumed.
            return Project(id=own_id, path=own_path or str(ref), visibility=Visibility.PRIVATE)
        raise PermissionDenied(
            f"CI tokens reach {ref} only through /-/projects/{own_id}/data/ URLs of their own project:"
            f" {_NEEDS_SERVICE}"
        )

    def _ci_role(self, project: Project, own_id: int, user_id: int) -> AccessLevel:
        """The job's user's role. Without a service token: Developer on the job's own project (a user who
        can run its pipelines has at least that), nothing elsewhere."""
        if self._service is not None:
            return self._gateway.member_access_level(self._service, project.id, user_id)
        return AccessLevel.DEVELOPER if project.id == own_id else AccessLevel.NO_ACCESS

    def _job_grant(self, credential: Credential, ref: ProjectRef) -> tuple[Grant, float]:
        job = self._token(
            CredentialKind.JOB_TOKEN,
            credential,
            lambda: (self._gateway.job(credential), self._policy.job_token_ttl),
        )
        if job.status != "running":
            raise InvalidCredential(f"CI job token belongs to a job that is {job.status}, no longer running")
        project = self._ci_project(ref, job.project_id, None)
        role = self._ci_role(project, job.project_id, job.user_id)
        allowlisted = project.id == job.project_id
        if not allowlisted and self._service is not None:
            source = self._gateway.project(self._service, ProjectRef(id=job.project_id))
            allowlisted = self._gateway.job_token_allows(self._service, project, source)
        actor = Actor(CredentialKind.JOB_TOKEN, job.user_id, job_project_id=job.project_id)
        grant = Grant(project=project, actor=actor, role=role, allowlisted=allowlisted)
        return grant, self._ttl(None, limit=self._policy.job_token_ttl)

    def _id_token_grant(self, credential: Credential, ref: ProjectRef) -> tuple[Grant, float]:
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
        project = self._ci_project(ref, claims.project_id, claims.project_path)
        role = self._ci_role(project, claims.project_id, claims.user_id)
        actor = Actor(
            CredentialKind.ID_TOKEN,
            claims.user_id,
            expires_at=claims.expires_at,
            job_project_id=claims.project_id,
            protected_ref=claims.protected_ref,
        )
        return Grant(project=project, actor=actor, role=role), self._ttl(claims.expires_at)


_SHAREABLE_ERRORS: dict[str, type[RegistryError]] = {
    cls.__name__: cls
    for cls in (InvalidCredential, CredentialExpired, CredentialRevoked, ProjectNotFound, PermissionDenied)
}


def _encode(value: Grant | RegistryError) -> str:
    """JSON for the shared cache: a grant, or a denial GitLab gave (never a secret)."""
    if isinstance(value, RegistryError):
        return json.dumps({"error": type(value).__name__, "message": value.message})
    actor = value.actor
    return json.dumps(
        {
            "project": [
                value.project.id,
                value.project.path,
                value.project.visibility.value,
                value.project.archived,
            ],
            "actor": None
            if actor is None
            else {
                "kind": actor.kind.name,
                "user_id": actor.user_id,
                "scopes": sorted(actor.scopes),
                "expires_at": actor.expires_at.isoformat() if actor.expires_at else None,
                "job_project_id": actor.job_project_id,
                "protected_ref": actor.protected_ref,
            },
            "role": int(value.role),
            "allowlisted": value.allowlisted,
        }
    )


def _decode(payload: str) -> Grant | RegistryError:
    data = json.loads(payload)
    if "error" in data:
        return _SHAREABLE_ERRORS.get(data["error"], InvalidCredential)(data["message"])
    project_id, path, visibility, archived = data["project"]
    actor = data["actor"]
    return Grant(
        project=Project(project_id, path, Visibility(visibility), archived),
        actor=None
        if actor is None
        else Actor(
            kind=CredentialKind[actor["kind"]],
            user_id=actor["user_id"],
            scopes=frozenset(actor["scopes"]),
            expires_at=datetime.fromisoformat(actor["expires_at"]) if actor["expires_at"] else None,
            job_project_id=actor["job_project_id"],
            protected_ref=actor["protected_ref"],
        ),
        role=AccessLevel(data["role"]),
        allowlisted=data["allowlisted"],
    )
