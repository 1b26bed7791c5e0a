"""GitLab as an OAuth 2 provider for the browser UI: the authorization URL (with PKCE S256), the code
exchange and the refresh. The only module that imports Authlib."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from app.errors import GitLabUnavailable, InvalidCredential
from app.model.identity import OAuthTokens


class GitLabOAuth:
    """One registered OAuth application of one GitLab."""

    def __init__(
        self, gitlab_url: str, client_id: str, client_secret: str | None, scopes: str, timeout: float
    ):
        self._base = gitlab_url.rstrip("/")
        self._client_id, self._client_secret = client_id, client_secret
        self._scopes, self._timeout = scopes, timeout

    def _session(self, redirect_uri: str | None) -> OAuth2Session:
        return OAuth2Session(
            self._client_id,
            self._client_secret,
            scope=self._scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )

    def authorization_url(self, redirect_uri: str, state: str, code_verifier: str) -> str:
        url, _ = self._session(redirect_uri).create_authorization_url(
            f"{self._base}/oauth/authorize", state=state, code_verifier=code_verifier
        )
        return str(url)

    def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> OAuthTokens:
        return self._tokens(
            lambda s: s.fetch_token(
                f"{self._base}/oauth/token",
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                timeout=self._timeout,
            ),
            redirect_uri,
        )

    def refresh(self, refresh_token: str) -> OAuthTokens:
        return self._tokens(
            lambda s: s.refresh_token(
                f"{self._base}/oauth/token", refresh_token=refresh_token, timeout=self._timeout
            ),
            None,
        )

    def _tokens(self, call: Any, redirect_uri: str | None) -> OAuthTokens:
        session = self._session(redirect_uri)
        try:
            token = call(session)
        except OAuthError as e:  # GitLab's `error` answer: a bad, used or expired code or refresh token
            raise InvalidCredential(f"GitLab refused the sign-in ({e.error})") from None
        except requests.RequestException:
            raise GitLabUnavailable("GitLab did not answer the sign-in") from None
        finally:
            session.close()
        lifetime = int(token.get("expires_in") or 7200)
        return OAuthTokens(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            expires_at=datetime.now(UTC) + timedelta(seconds=lifetime),
        )
