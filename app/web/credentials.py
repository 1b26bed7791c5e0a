"""Reads the GitLab credential a request carries, classified by how it arrived (never by its prefix)."""

from __future__ import annotations

import base64
import binascii

from flask import Request

from app.errors import InvalidCredential
from app.model import Credential, CredentialKind

JOB_TOKEN_USER = "gitlab-ci-token"  # noqa: S105 - GitLab's fixed username


def credential_from(request: Request) -> Credential | None:
    """The request's credential, None when it carries none; InvalidCredential when it is malformed."""
    authorization = request.headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return Credential(CredentialKind.ACCESS_TOKEN, value)
        if scheme.lower() == "basic" and value:
            return _from_basic(value)
        raise InvalidCredential("Unsupported Authorization header: use Bearer <GitLab token> or Basic")
    if token := request.headers.get("Private-Token", "").strip():
        return Credential(CredentialKind.ACCESS_TOKEN, token)
    if request.headers.get("Job-Token") or request.headers.get("Deploy-Token"):
        raise InvalidCredential("Job and deploy tokens are not supported yet: use an access token")
    return None


def _from_basic(value: str) -> Credential:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCredential("Malformed HTTP Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise InvalidCredential("HTTP Basic password must be a GitLab token")
    if username == JOB_TOKEN_USER or username.startswith("gitlab+deploy-token-"):
        raise InvalidCredential("Job and deploy tokens are not supported yet: use an access token")
    return Credential(CredentialKind.ACCESS_TOKEN, password, username=username)


def carries_basic_auth(request: Request) -> bool:
    """True when the credential is HTTP Basic, which DVC's aiohttp re-sends to redirect targets."""
    return request.headers.get("Authorization", "").lstrip().lower().startswith("basic ")
