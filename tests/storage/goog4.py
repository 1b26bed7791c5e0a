"""Checks a GOOG4-RSA-SHA256 V4 signed URL the way Cloud Storage does, from Google's documented algorithm
(cloud.google.com/storage/docs/authentication/signatures): canonical request, string to sign, RSA
PKCS#1 v1.5 SHA-256 with the service account's public key, and the time window. The emulators check
nothing, so the tests check with this."""

from __future__ import annotations

import binascii
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class Rejected(Exception):
    """What Cloud Storage would answer 400 ExpiredToken or 403 SignatureDoesNotMatch to."""


def verify(
    url: str,
    method: str,
    public_key: rsa.RSAPublicKey,
    *,
    now: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Return if the URL authorises `method` (with these request headers) now; raise Rejected saying why
    not."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if params.get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256":
        raise Rejected("not a GOOG4-RSA-SHA256 URL")
    signed_at = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expires = int(params["X-Goog-Expires"])
    if expires > 604800:
        raise Rejected("X-Goog-Expires above 7 days")
    if (now or datetime.now(UTC)) > signed_at + timedelta(seconds=expires):
        raise Rejected("ExpiredToken")
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    if not scope.startswith(signed_at.strftime("%Y%m%d") + "/"):
        raise Rejected("credential scope date differs from X-Goog-Date")
    signed_headers = params["X-Goog-SignedHeaders"].split(";")
    headers = {"host": parts.netloc, **{k.lower(): v for k, v in (headers or {}).items()}}
    if any(name not in headers for name in signed_headers):
        raise Rejected("SignatureDoesNotMatch: a signed header is missing from the request")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query)
        if k != "X-Goog-Signature"
    )
    canonical_request = "\n".join(
        [
            method,
            parts.path,
            canonical_query,
            "".join(f"{name}:{headers[name]}\n" for name in signed_headers),
            ";".join(signed_headers),
            "UNSIGNED-PAYLOAD",
        ]
    )
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    try:
        signature = binascii.unhexlify(params["X-Goog-Signature"])
        public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise Rejected("SignatureDoesNotMatch") from None


def public_key_of(service_account_file: Path) -> rsa.RSAPublicKey:
    """The public half of a service-account key file's private key."""
    pem = json.loads(service_account_file.read_text())["private_key"].encode()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key()


def start_resumable(url: str, headers: dict[str, str], public_key: rsa.RSAPublicKey) -> str:
    """POST a signed RESUMABLE URL the way Cloud Storage answers it: verify the signature, then open a
    resumable session for the signed object and return its session URI. (The emulator answers 501 to the
    XML-API POST, research/storage-emulators.md §4, so this does the emulator's part through its JSON API.)"""
    verify(url, "POST", public_key, headers=headers)
    parts = urlsplit(url)
    bucket, _, name = parts.path.lstrip("/").partition("/")
    answer = requests.post(
        f"{parts.scheme}://{parts.netloc}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "resumable", "name": unquote(name)},
        json={"name": unquote(name)},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.headers["Location"])
