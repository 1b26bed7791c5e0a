"""SigV4 header authentication of S3 requests, checked with botocore's own signer: the Authorization header
parsed, the clock checked, the expected signature computed over the request as it arrived (no canonical
form written here), and the chunk and trailer signatures of a signed aws-chunked body."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from app.s3_errors import S3Error, signature_mismatch

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AMZ_DATE = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z")
_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)\s*=\s*([^,\s]*)\s*")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Authorization:
    """An `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header, parsed."""

    access_key: str = field(repr=False)
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)


def parse_authorization(value: str) -> Authorization:
    """The header's parts; 400 AuthorizationHeaderMalformed (or InvalidRequest for another scheme)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != ALGORITHM:
        raise S3Error(
            "InvalidRequest",
            f"The authorization mechanism you have provided is not supported: use {ALGORITHM} (SigV4)",
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        found = _FIELD.fullmatch(part)
        if found is None or found.group(1) in fields:
            raise _malformed("expected Credential=…, SignedHeaders=…, Signature=…")
        fields[found.group(1)] = found.group(2)
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise _malformed("Credential, SignedHeaders and Signature are each required once")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise _malformed("Credential must be <access key id>/<yyyymmdd>/<region>/s3/aws4_request")
    access_key, date, region, service, _ = scope
    if service != "s3" or not re.fullmatch(r"\d{8}", date):
        raise _malformed("Credential must be <access key id>/<yyyymmdd>/<region>/s3/aws4_request")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if "host" not in signed or any(not h or h != h.lower() for h in signed):
        raise _malformed("SignedHeaders must be lower-case header names, host included")
    signature = fields["Signature"]
    if not _HEX64.fullmatch(signature):
        raise _malformed("Signature must be 64 lower-case hex digits")
    return Authorization(access_key, date, region, service, signed, signature)


def _malformed(why: str) -> S3Error:
    return S3Error("AuthorizationHeaderMalformed", f"The authorization header is malformed: {why}")


def request_time(amz_date: str | None, now: datetime) -> datetime:
    """The request's x-amz-date, within MAX_SKEW of now (403 RequestTimeTooSkewed otherwise)."""
    if not amz_date:
        raise S3Error("AccessDenied", "AWS authentication requires a valid x-amz-date header", status=403)
    found = _AMZ_DATE.fullmatch(amz_date)
    try:  # strptime costs a third of the verification
        year, month, day, hour, minute, second = (int(part) for part in found.groups()) if found else (0,) * 6
        when = datetime(year, month, day, hour, minute, second, tzinfo=UTC) if found else None
    except ValueError:
        when = None
    if when is None:
        raise S3Error("AccessDenied", "x-amz-date must be yyyymmddThhmmssZ", status=403)
    if abs(now - when) > MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large (over 15 minutes)",
            status=403,
        )
    return when


class _Signer(S3SigV4Auth):  # type: ignore[misc]  # botocore ships no types
    """botocore's S3 signer, signing exactly the headers the client said it signed (botocore's own
    choice leaves out some, e.g. User-Agent, that other SDKs sign)."""

    def __init__(self, credentials: Credentials, region: str, signed: tuple[str, ...]) -> None:
        super().__init__(credentials, "s3", region)
        self._signed = frozenset(signed)

    def headers_to_sign(self, request: Any) -> HTTPHeaders:
        found = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                found[name.lower()] = value
        return found


@dataclass(frozen=True)
class SignedRequest:
    """A request whose header signature holds: what the chunks of its aws-chunked body are signed with."""

    signature: str = field(repr=False)
    timestamp: str
    _signer: _Signer = field(repr=False)
    _request: AWSRequest = field(repr=False)

    def chunk_signature(self, previous: str, chunk_sha256: str) -> str:
        """The signature of a chunk of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body."""
        scope = self._signer.credential_scope(self._request)
        text = f"{ALGORITHM}-PAYLOAD\n{self.timestamp}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{chunk_sha256}"
        return str(self._signer.signature(text, self._request))

    def trailer_signature(self, previous: str, trailer: bytes) -> str:
        """The signature of the trailing headers of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER body."""
        scope = self._signer.credential_scope(self._request)
        digest = hashlib.sha256(trailer).hexdigest()
        text = f"{ALGORITHM}-TRAILER\n{self.timestamp}\n{scope}\n{previous}\n{digest}"
        return str(self._signer.signature(text, self._request))


def expected_signature(
    auth: Authorization,
    *,
    method: str,
    origin: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    timestamp: str,
) -> SignedRequest:
    """What the signature of this request is with the access key id as its secret: `origin` is
    scheme://host, `path` the decoded path (encoded here as botocore encodes keys), `query` the decoded
    parameters, `headers` all the request's headers (the signed ones and x-amz-content-sha256 are used)."""
    signer = _Signer(Credentials(auth.access_key, auth.access_key), auth.region, auth.signed_headers)
    url = origin + percent_encode(path, safe="/~")
    request = AWSRequest(method=method, url=url, params=query or None)
    request.headers = HTTPHeaders()
    wanted = set(auth.signed_headers) | {"x-amz-content-sha256"}
    for name, value in headers:
        if name.lower() in wanted:
            request.headers[name.lower()] = value
    request.context["timestamp"] = timestamp
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    return SignedRequest(str(signature), timestamp, signer, request)


def verify(
    auth: Authorization,
    *,
    method: str,
    origin: str,
    path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    now: datetime,
) -> SignedRequest:
    """The request, when its date is current and its signature is the one its key makes (constant-time
    comparison); 403 RequestTimeTooSkewed / SignatureDoesNotMatch otherwise."""
    amz_date = next((v for k, v in headers if k.lower() == "x-amz-date"), None)
    request_time(amz_date, now)
    assert amz_date is not None  # request_time refused it otherwise
    if amz_date[:8] != auth.date:
        raise signature_mismatch()
    signed = expected_signature(
        auth, method=method, origin=origin, path=path, query=query, headers=headers, timestamp=amz_date
    )
    if not hmac.compare_digest(signed.signature, auth.signature):
        raise signature_mismatch()
    return signed
