"""GitLab CI ID tokens (`id_tokens:` in .gitlab-ci.yml): JWTs verified offline against the instance's JWKS.
The only module that imports PyJWT."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

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
    """Verifies signature (JWKS cached, refetched for an unknown `kid`), issuer, audience, exp and nbf."""

    def __init__(self, *, gitlab_url: str, audience: str, timeout: float) -> None:
        self._issuer = gitlab_url
        self._audience = audience
        self._keys = jwt.PyJWKClient(gitlab_url + JWKS_PATH, cache_keys=True, lifespan=3600, timeout=timeout)

    def verify(self, token: str) -> IdTokenClaims:
        """The claims of a valid token; InvalidCredential saying why not, GitLabUnavailable without JWKS."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise GitLabUnavailable("GitLab's signing keys (JWKS) are unreachable; try again later") from None
        except (jwt.PyJWKClientError, jwt.DecodeError):
            raise InvalidCredential("CI ID token is not signed by this GitLab") from None
        try:
            claims = jwt.decode(
                token,
                key.key,
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
            )
        except (TypeError, ValueError):
            raise InvalidCredential("CI ID token lacks GitLab's project and user claims") from None
