"""Reads the GitLab credential a request carries, classified by how it arrived (prefixes are only hints)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace

from flask import Request

from app.errors import InvalidCredential
from app.model import Credential, CredentialKind

JOB_TOKEN_USER = "gitlab-ci-token"  # noqa: S105 - GitLab's fixed username for job tokens
_DEPLOY_TOKEN_USER = re.compile(r"^gitlab\+deploy-token-\d+$")


def credential_from(request: Request) -> Credential | None:
    """The request's credential (with the client's address), None when it carries none;
    InvalidCredential when it is malformed."""
    credential = _read(request)
    return None if credential is None else replace(credential, origin=request.remote_addr)


def _read(request: Request) -> Credential | None:
    authorization = request.headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return Credential(CredentialKind.BEARER, value)
        if scheme.lower() == "basic" and value:
            return _from_basic(value)
        raise InvalidCredential("Unsupported Authorization header: use Bearer <GitLab token> or Basic")
    for header, kind in (
        ("Private-Token", CredentialKind.ACCESS_TOKEN),
        ("Job-Token", CredentialKind.JOB_TOKEN),
        ("Deploy-Token", CredentialKind.DEPLOY_TOKEN),
    ):
        if token := request.headers.get(header, "").strip():
            return Credential(kind, token)
    return None


def _from_basic(value: str) -> Credential:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCredential("Malformed HTTP Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise InvalidCredential("HTTP Basic password must be a GitLab token")
    if username == JOB_TOKEN_USER:
        return Credential(CredentialKind.JOB_TOKEN, password, username=username)
    if _DEPLOY_TOKEN_USER.match(username):
        return Credential(CredentialKind.DEPLOY_TOKEN, password, username=username)
    return Credential(CredentialKind.ACCESS_TOKEN, password, username=username)


def carries_basic_auth(request: Request) -> bool:
    """True when the credential is HTTP Basic, which DVC's aiohttp re-sends to redirect targets."""
    return request.headers.get("Authorization", "").lstrip().lower().startswith("basic ")
