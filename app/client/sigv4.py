"""AWS Signature Version 4 for the few requests the client itself sends to a registry's S3 door (doctor's
probe): header auth over an empty body, with hmac and hashlib only — the client package imports no AWS SDK."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(
    method: str,
    url: str,
    params: dict[str, str],
    access_key: str,
    secret_key: str,
    *,
    region: str = "us-east-1",
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers that sign a body-less request to `url` (path unencoded, as S3 signs it: encoded once)
    with query `params`: Host, X-Amz-Date, X-Amz-Content-SHA256 and Authorization."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date, day = moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")
    parts = urlsplit(url)
    host = parts.netloc.lower()
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            names,
            EMPTY_SHA256,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Host": host,
        "X-Amz-Date": amz_date,
        "X-Amz-Content-SHA256": EMPTY_SHA256,
        "Authorization": f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={names}, "
        f"Signature={signature}",
    }
