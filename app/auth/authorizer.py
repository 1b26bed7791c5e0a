"""The one question every request asks: may this credential do this on that project (or as an admin)?
GitLab's answer comes through the grant cache; access.py decides per action. Per client address, two
budgets keep GitLab's work bounded without ever refusing a look-up of a credential GitLab has not refused:
the refusals GitLab gave, and the look-ups anonymous requests cost."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from app.access import decide, decide_admin, hides_project
from app.auth.clients import client_address
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
from app.model.identity import Action, Actor, Credential, CredentialKind, Grant
from app.model.projects import Project, ProjectRef
from app.ratelimit import Limiter, RateLimiter

log = logging.getLogger(__name__)
_ADMIN_CREDENTIALS = (CredentialKind.ACCESS_TOKEN, CredentialKind.OAUTH_TOKEN, CredentialKind.BEARER)
REFUSAL_MEMORY = 60  # seconds a token refused while its address is over budget stays refused, unasked


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
        anonymous: Limiter | None = None,
    ) -> None:
        self._policy = policy
        # Refusals GitLab gave, per client address. Every credential GitLab has not refused is looked up,
        # so someone else's junk never costs a valid token a 429; past the budget, the address's refused
        # credentials are answered 429 (with GitLab's reason) and remembered, so repeats cost nothing.
        self._refusals: Limiter = refusals or RateLimiter(rate=0, burst=1)
        self._refused: TTLCache[InvalidCredential] = TTLCache(max_size=policy.max_entries)
        # GitLab look-ups of projects no answer is cached for, spent by anonymous requests per address.
        self._anonymous: Limiter = anonymous or RateLimiter(rate=0, burst=1)
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
        if credential is None and not self._grants.cached(key):
            self._admit_anonymous(client_address())
        try:
            grant = self._grants.load(key, lambda: self._ask(credential, ref))
        except GitLabUnavailable:
            stale = self._grants.stale(key) if action is Action.READ else None
            if stale is None:
                raise
            log.warning("GitLab unavailable: serving a read from a permission cached earlier")
            grant = stale
        if isinstance(grant, InvalidCredential) and credential is not None:
            self._throttle_refused(credential, grant)
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

    def _admit_anonymous(self, address: str | None) -> None:
        """Spend one of the address's anonymous look-ups, or say when the next one comes. 429 rather than
        "not found": it is the true answer (the path may well be a public project), it is never cached
        as a denial, and clients that honour Retry-After slow down; it tells nothing about the path."""
        if address is not None and (wait := self._anonymous.take(f"addr:{address}")):
            raise RateLimited(
                "Too many look-ups of projects without a GitLab token from this address; send a token,"
                f" or retry in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )

    def _throttle_refused(self, credential: Credential, refusal: InvalidCredential) -> None:
        """A refused credential from an address past its refusal budget: 429 (GitLab's reason kept)."""
        origin = credential.origin
        if origin and (wait := self._refusals.take(f"addr:{origin}", spend=False)):
            raise RateLimited(
                f"{refusal.message}; too many refused GitLab tokens from this address: check the token,"
                f" retry in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )

    def _ask(self, credential: Credential | None, ref: ProjectRef) -> tuple[Grant | RegistryError, float]:
        """GitLab's answer; a refusal is counted against the credential's address."""
        if credential is not None and (refused := self._refused.get(credential.fingerprint)) is not None:
            return refused, self._policy.failure_ttl  # refused lately, from an address over budget
        answer, ttl = self._resolver.grant_or_denial(credential, ref)
        origin = credential.origin if credential is not None else None
        if (
            origin
            and credential is not None
            and isinstance(answer, InvalidCredential)
            and self._refusals.take(f"addr:{origin}", cost=attempts(credential))
        ):
            self._refused.put(credential.fingerprint, answer, REFUSAL_MEMORY)
            ttl = max(ttl, REFUSAL_MEMORY)
        return answer, ttl

    def member_projects(self, credential: Credential) -> list[Project]:
        """The projects the credential's user is a member of, as GitLab lists them (cached per credential
        for the success TTL: a page view costs GitLab nothing after the first)."""
        found = self._memberships.get(credential.fingerprint)
        if found is None:
            found = self._gateway.member_projects(credential)
            self._memberships.put(credential.fingerprint, found, self._policy.success_ttl)
        return found

    def identify(self, credential: Credential) -> Actor:
        """Who the credential is, with the username, whatever project it is used on (for whoami)."""
        return self._resolver.identify(credential)

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
