"""Who is asking: the GitLab credential a request carries, classified by how it arrived (prefixes are
only hints), and the client's address as the peer or a trusted proxy in front of us reports it."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import cast

from flask import Request, g, request

from app.auth.clients import bind_client_address
from app.errors import InvalidCredential
from app.model.identity import Credential, CredentialKind
from app.settings import IPNetwork
from app.web.context import services

JOB_TOKEN_USER = "gitlab-ci-token"  # noqa: S105 - GitLab's fixed username for job tokens
_DEPLOY_TOKEN_USER = re.compile(r"^gitlab\+deploy-token-\d+$")
# GitLab's tokens (glpat-…, OAuth, job, deploy, runner) are tens of characters and its CI ID tokens (JWTs)
# about a kilobyte; GitLab's nginx refuses a header line over 8 KiB with a 400 we would report as its outage.
MAX_TOKEN_LENGTH = 4096
_UNKNOWN = object()
_PRINTABLE_TOKEN = re.compile(r"[\x21-\x7e]+")


def credential_from(request: Request) -> Credential | None:
    """The request's credential (with the client's address), None when it carries none;
    InvalidCredential when it is malformed."""
    credential = _read(request)
    return None if credential is None else replace(credential, origin=client_address())


def client_address() -> str | None:
    """The address of the client this request comes from (REGISTRY_TRUSTED_PROXIES), once per request."""
    found: object = g.get("client_address", _UNKNOWN)  # asked three times a request: one look-up each
    if found is _UNKNOWN:
        trusted = services().settings.trusted_proxies
        found = g.client_address = forwarded_client(
            request.remote_addr,
            # read only when some proxy is trusted (werkzeug's getlist walks the whole WSGI environ)
            request.headers.getlist("X-Forwarded-For") if trusted else (),
            trusted,
        )
    return cast("str | None", found)


def bind_client() -> None:
    """Before every request: the Authorizer counts its per-address budgets under this client's address."""
    bind_client_address(client_address())


def unbind_client(_: BaseException | None = None) -> None:
    bind_client_address(None)


def forwarded_client(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> str | None:
    """The client as the proxies in front of us report it (werkzeug's ProxyFix, with CIDRs instead of a
    hop count): X-Forwarded-For is read from the right while the hop that wrote it is a trusted proxy;
    the first address not in `trusted` is the client. A peer that is no trusted proxy is the client,
    whatever its headers say."""
    if not _trusted(peer, trusted):
        return peer
    client = peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if not hop:
            continue
        address = _address(hop)
        if address is None:
            break  # a trusted proxy wrote something that is no address: keep the last one it vouched for
        client = str(address)
        if not _trusted(client, trusted):
            break
    return client


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in a hop (some proxies add the port: 10.0.0.1:5123, [fd00::1]:5123), IPv4 addresses
    mapped into IPv6 (::ffff:10.0.0.1) as the IPv4 address they are; None for anything else."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _trusted(text: str | None, trusted: Sequence[IPNetwork]) -> bool:
    found = _address(text) if text and trusted else None
    return found is not None and any(found.version == net.version and found in net for net in trusted)


def _read(request: Request) -> Credential | None:
    authorization = request.headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return Credential(CredentialKind.BEARER, _token(value))
        if scheme.lower() == "basic" and value:
            return _from_basic(value)
        raise InvalidCredential("Unsupported Authorization header: use Bearer <GitLab token> or Basic")
    for header, kind in (
        ("Private-Token", CredentialKind.ACCESS_TOKEN),
        ("Job-Token", CredentialKind.JOB_TOKEN),
        ("Deploy-Token", CredentialKind.DEPLOY_TOKEN),
    ):
        if token := request.headers.get(header, "").strip():
            return Credential(kind, _token(token))
    return None


def _token(value: str) -> str:
    """A GitLab token as GitLab can be asked about it: printable ASCII (every kind of GitLab token, JWTs
    included, is), short enough for one header line; 401 without asking GitLab otherwise (the value is
    never repeated: it may be someone's secret with a typo)."""
    if len(value) > MAX_TOKEN_LENGTH or not _PRINTABLE_TOKEN.fullmatch(value):
        raise InvalidCredential(
            f"Malformed GitLab token: at most {MAX_TOKEN_LENGTH} printable ASCII characters, no spaces"
        )
    return value


def _from_basic(value: str) -> Credential:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and b64decode's own for non-ASCII input
        raise InvalidCredential("Malformed HTTP Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise InvalidCredential("HTTP Basic password must be a GitLab token")
    password = _token(password)
    if username == JOB_TOKEN_USER:
        return Credential(CredentialKind.JOB_TOKEN, password, username=username)
    if _DEPLOY_TOKEN_USER.match(username):
        return Credential(CredentialKind.DEPLOY_TOKEN, password, username=username)
    return Credential(CredentialKind.ACCESS_TOKEN, password, username=username)


def carries_basic_auth(request: Request) -> bool:
    """True when the credential is HTTP Basic, which DVC's aiohttp re-sends to redirect targets."""
    return request.headers.get("Authorization", "").lstrip().lower().startswith("basic ")
