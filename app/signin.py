"""Sign-in with GitLab for the browser UI: the OAuth round trip (a state bound to the browser that
started it, PKCE), server-side sessions with their CSRF token, and the refresh of GitLab's two-hour access
tokens, once per session however many requests need it at that moment. A sign-in in progress lives in a
signed cookie of the browser that started it (its state, PKCE verifier and return path: random values
and a path of ours), so no request writes to the database before GitLab has signed someone in; the
GitLab tokens stay here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeSerializer

from app.db.browser_sessions import BrowserSessions
from app.errors import InvalidCredential
from app.gitlab.gateway import GitLabGateway
from app.gitlab.oauth import GitLabOAuth
from app.model.identity import BrowserSession, Credential, CredentialKind

SIGN_IN_TTL = timedelta(minutes=10)  # from our redirect to GitLab's redirect back
REFRESH_MARGIN = timedelta(minutes=1)  # refresh an access token this long before it expires
REFRESH_LEASE = 30.0  # seconds one request holds a session's refresh (longer than GitLab's answer takes)
REFRESH_WAIT = 15.0  # seconds the other requests wait for it before going on with the token they have
SIGN_IN_AGAIN = "The sign-in expired or was started in another browser: sign in again"


class Leases(Protocol):
    """A lease shared by every process and replica (the shared auth cache's)."""

    def claim(self, key: str, lease_seconds: float) -> bool: ...

    def release(self, key: str) -> None: ...


@dataclass(frozen=True)
class _Pending:
    """A sign-in between our redirect to GitLab and GitLab's redirect back, as its cookie holds it."""

    state: str
    code_verifier: str = field(repr=False)
    return_to: str
    started: float  # epoch seconds


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
        signing_key: str,
        leases: Leases,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store, self._oauth, self._gateway = store, oauth, gateway
        self._session_ttl, self._clock = session_ttl, clock
        self._pending = URLSafeSerializer(signing_key, salt="registry-sign-in")
        self._leases = leases

    def begin(self, return_to: str, redirect_uri: str) -> tuple[str, str]:
        """GitLab's authorization URL, and the signed sign-in the browser keeps in a cookie until it
        returns (`redirect_uri`: our callback, as registered in GitLab)."""
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        started = self._clock().timestamp()
        cookie = self._pending.dumps({"s": state, "v": verifier, "r": return_to, "t": started})
        return self._oauth.authorization_url(redirect_uri, state, verifier), cookie

    def _read_pending(self, cookie: str) -> _Pending | None:
        try:
            data: Any = self._pending.loads(cookie) if cookie else None
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        try:
            return _Pending(str(data["s"]), str(data["v"]), str(data["r"]), float(data["t"]))
        except (KeyError, TypeError, ValueError):
            return None

    def finish(self, state: str, code: str, cookie: str, redirect_uri: str) -> tuple[str, str]:
        """The new session's cookie value and where the browser goes next; InvalidCredential for a state
        that is not this browser's sign-in, one that expired, and a code GitLab refuses (GitLab takes
        each code once: a replayed callback is refused there)."""
        pending = self._read_pending(cookie)
        if (
            pending is None
            or not state
            or not hmac.compare_digest(pending.state.encode(), state.encode("utf-8", "surrogatepass"))
            or pending.started + SIGN_IN_TTL.total_seconds() < self._clock().timestamp()
        ):
            raise InvalidCredential(SIGN_IN_AGAIN)
        if not code:
            raise InvalidCredential("GitLab did not authorize the sign-in")
        tokens = self._oauth.exchange(code, pending.code_verifier, redirect_uri)
        user = self._gateway.current_user(Credential(CredentialKind.OAUTH_TOKEN, tokens.access_token))
        session_cookie, now = secrets.token_urlsafe(32), self._clock()
        session = BrowserSession(
            id_hash=_hash(session_cookie),
            user_id=user.id,
            username=user.username,
            tokens=tokens,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._session_ttl,
        )
        self._store.create(session, now)
        return session_cookie, pending.return_to

    def session(self, cookie: str | None) -> BrowserSession | None:
        """The signed-in session behind a cookie, its access token fresh; None when there is none (unknown,
        expired, signed out, or GitLab no longer refreshes it)."""
        if not cookie:
            return None
        now = self._clock()
        session = self._store.get(_hash(cookie), now)
        if session is None or session.tokens.expires_at - REFRESH_MARGIN > now:
            return session
        return self._refreshed(session)

    def _refreshed(self, seen: BrowserSession) -> BrowserSession | None:
        """The session with the access token that follows `seen`'s. GitLab takes each refresh token once,
        so one request (the lease holder) refreshes and the others wait for the tokens it stores: pages
        loading together never refresh twice, so none of them is signed out by a refused refresh."""
        key = _hash(f"oauth-refresh\n{seen.id_hash}")
        deadline = time.monotonic() + REFRESH_WAIT
        while True:
            if self._leases.claim(key, REFRESH_LEASE):
                try:
                    return self._refresh(seen)
                finally:
                    self._leases.release(key)
            time.sleep(0.05)
            current = self._store.get(seen.id_hash, self._clock())
            if current is None or current.tokens.access_token != seen.tokens.access_token:
                return current  # refreshed by the lease holder (or signed out: GitLab refused it)
            if time.monotonic() > deadline:
                return current  # the holder is slow or gone: go on with the token we have

    def _refresh(self, seen: BrowserSession) -> BrowserSession | None:
        current = self._store.get(seen.id_hash, self._clock())
        if current is None or current.tokens.access_token != seen.tokens.access_token:
            return current  # refreshed while we waited for the lease
        if not current.tokens.refresh_token:
            self._store.end(current.id_hash)
            return None
        try:
            tokens = self._oauth.refresh(current.tokens.refresh_token)
        except InvalidCredential:  # revoked in GitLab
            self._store.end(current.id_hash)
            return None
        if self._store.replace_tokens(current.id_hash, current.tokens.access_token, tokens):
            return replace(current, tokens=tokens)
        return self._store.get(current.id_hash, self._clock())  # someone without the lease was faster

    def sign_out(self, cookie: str | None) -> None:
        if cookie:
            self._store.end(_hash(cookie))

    def purge(self) -> int:
        """Forget expired sessions; how many went (the worker's job)."""
        now = self._clock()
        return self._store.purge(now)

    @staticmethod
    def credential(session: BrowserSession) -> Credential:
        """What the Authorizer is asked with: the user's own OAuth token, as on the data plane."""
        return Credential(CredentialKind.OAUTH_TOKEN, session.tokens.access_token, username=session.username)

    @staticmethod
    def csrf_ok(session: BrowserSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(
            session.csrf_token.encode(), (token or "").encode("utf-8", "surrogatepass")
        )
