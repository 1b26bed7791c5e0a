"""Sign-in with GitLab for the browser UI: the OAuth round trip (a state bound to the browser that
started it, PKCE, each used once), server-side sessions with their CSRF token, and the refresh of
GitLab's two-hour access tokens. The browser only ever holds random values; the tokens stay here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.db.browser_sessions import BrowserSessions
from app.errors import InvalidCredential
from app.gitlab.gateway import GitLabGateway
from app.gitlab.oauth import GitLabOAuth
from app.model import BrowserSession, Credential, CredentialKind, PendingSignIn

SIGN_IN_TTL = timedelta(minutes=10)  # from our redirect to GitLab's redirect back
REFRESH_MARGIN = timedelta(minutes=1)  # refresh an access token this long before it expires
SIGN_IN_AGAIN = "The sign-in expired or was started in another browser: sign in again"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SignIn:
    """Sign-in, the signed-in session of a cookie, sign-out."""

    def __init__(
        self,
        store: BrowserSessions,
        oauth: GitLabOAuth,
        gateway: GitLabGateway,
        *,
        session_ttl: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store, self._oauth, self._gateway = store, oauth, gateway
        self._session_ttl, self._clock = session_ttl, clock

    def begin(self, return_to: str, redirect_uri: str) -> tuple[str, str]:
        """GitLab's authorization URL, and the nonce the browser keeps in a cookie until it returns
        (`redirect_uri`: our callback, as registered in GitLab)."""
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(64),
        )
        self._store.begin_sign_in(PendingSignIn(state, _hash(nonce), verifier, return_to, self._clock()))
        return self._oauth.authorization_url(redirect_uri, state, verifier), nonce

    def finish(self, state: str, code: str, nonce: str, redirect_uri: str) -> tuple[str, str]:
        """The new session's cookie value and where the browser goes next; InvalidCredential for a state
        that is unknown, used, expired or not this browser's, and for a code GitLab refuses."""
        pending = self._store.take_sign_in(state) if state else None
        if (
            pending is None
            or not nonce
            or not hmac.compare_digest(pending.nonce_hash, _hash(nonce))
            or pending.created_at + SIGN_IN_TTL < self._clock()
        ):
            raise InvalidCredential(SIGN_IN_AGAIN)
        if not code:
            raise InvalidCredential("GitLab did not authorize the sign-in")
        tokens = self._oauth.exchange(code, pending.code_verifier, redirect_uri)
        user = self._gateway.current_user(Credential(CredentialKind.OAUTH_TOKEN, tokens.access_token))
        cookie, now = secrets.token_urlsafe(32), self._clock()
        session = BrowserSession(
            id_hash=_hash(cookie),
            user_id=user.id,
            username=user.username,
            tokens=tokens,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._session_ttl,
        )
        self._store.create(session, now)
        return cookie, pending.return_to

    def session(self, cookie: str | None) -> BrowserSession | None:
        """The signed-in session behind a cookie, its access token fresh; None when there is none (unknown,
        expired, signed out, or GitLab no longer refreshes it)."""
        if not cookie:
            return None
        now = self._clock()
        session = self._store.get(_hash(cookie), now)
        if session is None or session.tokens.expires_at - REFRESH_MARGIN > now:
            return session
        if not session.tokens.refresh_token:
            self._store.end(session.id_hash)
            return None
        try:
            tokens = self._oauth.refresh(session.tokens.refresh_token)
        except InvalidCredential:  # revoked in GitLab, or the refresh token was used elsewhere
            self._store.end(session.id_hash)
            return None
        if self._store.replace_tokens(session.id_hash, session.tokens.access_token, tokens):
            return replace(session, tokens=tokens)
        return self._store.get(session.id_hash, now)  # a concurrent request refreshed it first

    def sign_out(self, cookie: str | None) -> None:
        if cookie:
            self._store.end(_hash(cookie))

    def purge(self) -> int:
        """Forget expired sessions and sign-ins never finished; how many went (the worker's job)."""
        now = self._clock()
        return self._store.purge(now, now - SIGN_IN_TTL)

    @staticmethod
    def credential(session: BrowserSession) -> Credential:
        """What the Authorizer is asked with: the user's own OAuth token, as on the data plane."""
        return Credential(CredentialKind.OAUTH_TOKEN, session.tokens.access_token, username=session.username)

    @staticmethod
    def csrf_ok(session: BrowserSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf_token, token or "")
