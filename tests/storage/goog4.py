"""Checks a GOOG4-RSA-SHA256 V4 signed URL the way Cloud Storage does, from Google's documented algorithm
(cloud.google.com/storage/docs/authentication/signatures): canonical request, string to sign, RSA
PKCS#1 v1.5 SHA-256 with the service account's public key, and the time window. The emulators check
nothing, so the tests check with this."""

from __future__ import annotations

import binascii
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class Rejected(Exception):
    """What Cloud Storage would answer 400 ExpiredToken or 403 SignatureDoesNotMatch to."""


def verify(url: str, method: str, public_key: rsa.RSAPublicKey, *, now: datetime | None = None) -> None:
    """Return if the URL authorises `method` now; raise Rejected saying why not."""
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
    headers = {"host": parts.netloc}
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
