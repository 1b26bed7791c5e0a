"""Turns a credential and a project into a Grant through GitLab's API, cached by the credential's sha256."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TypeVar

from app.access import decide
from app.cache import TTLCache
from app.errors import InvalidCredential, ProjectNotFound, RegistryError
from app.gitlab.gateway import AccessTokenInfo, GitLabGateway
from app.model import Action, Actor, Credential, CredentialKind, Grant, ProjectRef

T = TypeVar("T")


@dataclass(frozen=True)
class AuthPolicy:
    """How long GitLab's answers are trusted, and what anonymous callers may do."""

    success_ttl: float = 300
    failure_ttl: float = 10
    max_entries: int = 10_000
    anonymous_reads: bool = True


def _expiry(expires_on: date | None) -> datetime | None:
    """GitLab tokens expire at midnight UTC at the start of their expiry date."""
    return datetime.combine(expires_on, time.min, UTC) if expires_on else None


class Authorizer:
    """Answers "may this credential do this on that project?" with at most one GitLab round per TTL."""

    def __init__(self, gateway: GitLabGateway, policy: AuthPolicy) -> None:
        self._gateway = gateway
        self._policy = policy
        self._grants: TTLCache[Grant | RegistryError] = TTLCache(max_size=policy.max_entries)
        self._tokens: TTLCache[AccessTokenInfo | RegistryError] = TTLCache(max_size=policy.max_entries)

    def authorize(self, credential: Credential | None, ref: ProjectRef, action: Action) -> Grant:
        """The caller's grant on the project if it allows the action; raise the reason otherwise."""
        key = (credential.fingerprint if credential else None, ref.lookup_key)
        grant = self._grants.load(key, lambda: self._guarded(lambda: self._grant(credential, ref)))
        if isinstance(grant, RegistryError):
            raise type(grant)(grant.message)
        decide(grant, action, anonymous_reads=self._policy.anonymous_reads)
        return grant

    def _guarded(self, fetch: Callable[[], tuple[T, float]]) -> tuple[T | RegistryError, float]:
        try:
            return fetch()
        except (InvalidCredential, ProjectNotFound) as denied:  # GitLabUnavailable is never cached
            return denied, self._policy.failure_ttl

    def _grant(self, credential: Credential | None, ref: ProjectRef) -> tuple[Grant, float]:
        if credential is None:
            try:
                project = self._gateway.project(None, ref)
            except ProjectNotFound:
                raise ProjectNotFound(
                    f"Project {ref} not found, or it needs a GitLab token to read"
                ) from None
            return Grant(project=project, actor=None), self._policy.success_ttl
        if credential.kind is CredentialKind.ACCESS_TOKEN:
            actor = self._access_token_actor(credential)
        else:  # pragma: no cover - every kind of CredentialKind is handled above
            raise InvalidCredential("Unsupported credential")
        project = self._gateway.project(credential, ref)
        role = self._gateway.member_access_level(credential, project.id, actor.user_id)
        return Grant(project=project, actor=actor, role=role), self._ttl_until(actor.expires_at)

    def _access_token_actor(self, credential: Credential) -> Actor:
        info = self._tokens.load(
            credential.fingerprint,
            lambda: self._guarded(
                lambda: (self._gateway.access_token_info(credential), self._policy.success_ttl)
            ),
        )
        if isinstance(info, RegistryError):
            raise type(info)(info.message)
        if info.revoked:
            raise InvalidCredential("GitLab token has been revoked")
        expires_at = _expiry(info.expires_at)
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise InvalidCredential(f"GitLab token expired on {info.expires_at}")
        if not info.active:
            raise InvalidCredential("GitLab token is not active")
        return Actor(kind=credential.kind, user_id=info.user_id, scopes=info.scopes, expires_at=expires_at)

    def _ttl_until(self, expires_at: datetime | None) -> float:
        ttl = self._policy.success_ttl
        if expires_at is not None:
            ttl = min(ttl, (expires_at - datetime.now(UTC)).total_seconds())
        return ttl
