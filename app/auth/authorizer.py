"""The one question every request asks: may this credential do this on that project (or as an admin)?
GitLab's answer comes through the grant cache; access.py decides per action."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from app.access import decide, decide_admin, hides_project
from app.auth.grant_cache import GrantCache
from app.auth.grants import GrantResolver, attempts
from app.auth.policy import AuthPolicy
from app.cache import TTLCache
from app.db.shared_cache import SharedAuthCache
from app.errors import (
    AuthenticationRequired,
    GitLabUnavailable,
    InvalidCredential,
    PermissionDenied,
    ProjectNotFound,
    RateLimited,
    RegistryError,
)
from app.gitlab.gateway import GitLabGateway, UserInfo
from app.gitlab.id_tokens import IdTokenVerifier
from app.model import Action, Credential, CredentialKind, Grant, Project, ProjectRef
from app.ratelimit import Limiter, RateLimiter

log = logging.getLogger(__name__)
_ADMIN_CREDENTIALS = (CredentialKind.ACCESS_TOKEN, CredentialKind.OAUTH_TOKEN, CredentialKind.BEARER)


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
        refusals: Limiter | None = None,
    ) -> None:
        self._policy = policy
        # GitLab look-ups spent on credentials it refused, per client address: a loop of made-up tokens
        # is held up (429) before it becomes GitLab traffic. Cached answers never count.
        self._refusals: Limiter = refusals or RateLimiter(rate=0, burst=1)
        self._resolver = GrantResolver(gateway, policy, service=service, id_tokens=id_tokens)
        self._gateway = gateway
        self._memberships: TTLCache[list[Project]] = TTLCache(max_size=10_000)
        # observe: where each answer came from (local, shared, gitlab)
        self._grants = GrantCache(policy, shared, observe or (lambda _: None))

    def authorize(self, credential: Credential | None, ref: ProjectRef, action: Action) -> Grant:
        """The caller's grant on the project if it allows the action; raise the reason otherwise. A
        project the caller cannot see is GitLab's 404 for reads; for changes it is one 403 (401 without a
        credential) that does not tell a missing project from a hidden one, because DVC prints the reason
        of a refused upload's 403 and only a URL for a 404."""
        try:
            return self._authorize(credential, ref, action)
        except ProjectNotFound:
            if action is Action.READ:
                raise
            if credential is None:
                raise AuthenticationRequired(f"Authentication required to write to {ref}") from None
            raise PermissionDenied(f"Project {ref} does not exist or you cannot write to it") from None

    def _authorize(self, credential: Credential | None, ref: ProjectRef, action: Action) -> Grant:
        key = (credential.fingerprint if credential else None, ref.lookup_key)
        try:
            grant = self._grants.load(key, lambda: self._ask(credential, ref))
        except GitLabUnavailable:
            stale = self._grants.stale(key) if action is Action.READ else None
            if stale is None:
                raise
            log.warning("GitLab unavailable: serving a read from a permission cached earlier")
            grant = stale
        if isinstance(grant, RegistryError):
            raise type(grant)(grant.message)
        try:
            decide(
                grant,
                action,
                anonymous_reads=self._policy.anonymous_reads,
                id_token_protected_writes=self._policy.id_token_protected_writes,
            )
        except PermissionDenied:
            if hides_project(grant):
                raise ProjectNotFound(f"Project {ref} not found") from None  # what GitLab says of none
            raise
        return grant

    def _ask(self, credential: Credential | None, ref: ProjectRef) -> tuple[Grant | RegistryError, float]:
        """GitLab's answer, unless the credential's address has had too many refused lately."""
        origin = f"addr:{credential.origin}" if credential is not None and credential.origin else None
        if origin is not None and (wait := self._refusals.take(origin, spend=False)):
            raise RateLimited(
                "Too many refused GitLab tokens from this address; check the token, retry later",
                retry_after=math.ceil(wait),
            )
        answer, ttl = self._resolver.grant_or_denial(credential, ref)
        if origin is not None and credential is not None and isinstance(answer, InvalidCredential):
            self._refusals.take(origin, cost=attempts(credential))
        return answer, ttl

    def member_projects(self, credential: Credential) -> list[Project]:
        """The projects the credential's user is a member of, as GitLab lists them (cached per credential
        for the success TTL: a page view costs GitLab nothing after the first)."""
        found = self._memberships.get(credential.fingerprint)
        if found is None:
            found = self._gateway.member_projects(credential)
            self._memberships.put(credential.fingerprint, found, self._policy.success_ttl)
        return found

    def authorize_admin(self, credential: Credential | None, action: Action) -> UserInfo:
        """The GitLab user behind a personal/OAuth token if they may use the admin endpoints for the
        action; raise the reason otherwise. CI, deploy and ID tokens never administer."""
        if credential is None:
            raise AuthenticationRequired("Admin endpoints need a GitLab administrator's token")
        if credential.kind not in _ADMIN_CREDENTIALS:
            raise PermissionDenied("Admin endpoints need a personal access token or an OAuth token")
        actor, user = self._resolver.admin(credential)
        decide_admin(actor, user.is_admin, user.username, action, self._policy.admin_users)
        return user
