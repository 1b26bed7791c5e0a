"""GitLab CI ID tokens (`id_tokens:` in .gitlab-ci.yml): JWTs verified offline against the instance's JWKS.
The only module that imports PyJWT."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import requests

from app.errors import GitLabUnavailable, InvalidCredential

JWKS_PATH = "/oauth/discovery/keys"


@dataclass(frozen=True)
class IdTokenClaims:
    """What the registry takes from a verified ID token."""

    project_id: int
    project_path: str
    user_id: int
    protected_ref: bool
    expires_at: datetime
    username: str | None = None  # the `user_login` claim


def looks_like_jwt(secret: str) -> bool:
    """A cheap shape check (three base64url parts, a JSON header naming an algorithm); never proof."""
    parts = secret.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except ValueError:
        return False
    return isinstance(header, dict) and "alg" in header


class IdTokenVerifier:
    """Verifies signature (JWKS cached, refetched for an unknown `kid` at most every REFETCH_SECONDS),
    issuer, audience, exp and nbf."""

    REFETCH_SECONDS = 30

    def __init__(self, *, gitlab_url: str, audience: str, timeout: float) -> None:
        self._issuer = gitlab_url
        self._audience = audience
        self._timeout = timeout
        self._session = requests.Session()
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _fetch_keys(self) -> None:
        try:
            response = self._session.get(self._issuer + JWKS_PATH, timeout=self._timeout)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (requests.RequestException, ValueError, jwt.PyJWKSetError):
            raise GitLabUnavailable("GitLab's signing keys (JWKS) are unreachable; try again later") from None
        self._keys = {key.key_id: key.key for key in keys if key.key_id}
        self._fetched_at = time.monotonic()

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at > self.REFETCH_SECONDS:
                self._fetch_keys()  # a new key (rotation) or the first use
            return self._keys.get(kid)

    def verify(self, token: str) -> IdTokenClaims:
        """The claims of a valid token; InvalidCredential saying why not, GitLabUnavailable without JWKS."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError:
            raise InvalidCredential("CI ID token is invalid") from None
        key = self._key(str(kid)) if kid else None
        if key is None:
            raise InvalidCredential("CI ID token is not signed by this GitLab")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=30,
                options={"require": ["exp", "iss", "aud", "project_id", "user_id"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidCredential("CI ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidCredential(f"CI ID token audience must be {self._audience}") from None
        except jwt.InvalidTokenError:
            raise InvalidCredential("CI ID token is invalid") from None
        try:
            return IdTokenClaims(
                project_id=int(claims["project_id"]),
                project_path=str(claims.get("project_path", "")),
                user_id=int(claims["user_id"]),
                protected_ref=str(claims.get("ref_protected", "false")).lower() == "true",
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                username=claims.get("user_login"),
            )
        except (TypeError, ValueError):
            raise InvalidCredential("CI ID token lacks GitLab's project and user claims") from None
