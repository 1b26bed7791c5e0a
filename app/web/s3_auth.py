"""Who sends an S3 request and what its body is: the SigV4 header verified (app.sigv4, botocore's signer)
over the request as it arrived, the access key id taken as the GitLab credential, presigned URLs refused,
and the body decoded (aws-chunked) and checked (sha256, Content-MD5, x-amz-checksum-*) as it streams."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote

from flask import Request

from app import sigv4
from app.aws_chunked import ChunkedBody
from app.model.identity import Credential, CredentialKind
from app.s3_errors import S3Error
from app.s3_payload import PayloadChecks, checked, checksum_algorithm
from app.web.credentials import MAX_TOKEN_LENGTH, client_address
from app.web.streaming import request_chunks

UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PRESIGNED = ("x-amz-signature", "x-amz-credential", "awsaccesskeyid")
_KEY_ID = re.compile(r"Credential\s*=\s*([^/,\s]+)/")


@dataclass
class S3Request:
    """A request whose signature holds (or an anonymous one): its GitLab credential and its body."""

    credential: Credential | None = field(repr=False)
    decoded_length: int | None
    checksums: dict[str, str]  # algorithm -> base64 value the client declared (trailers once read)
    _body: Iterator[bytes] = field(repr=False)
    _trailers: ChunkedBody | None = field(default=None, repr=False)

    def body(self) -> Iterator[bytes]:
        """The payload in bounded chunks, decoded and checked; a failed check raises S3Error before the
        iteration ends. Once."""
        yield from self._body
        if self._trailers is not None:
            self.checksums.update(_trailer_checksums(self._trailers))

    def body_bytes(self, limit: int) -> bytes:
        """The whole (small) body; 400 MaxMessageLengthExceeded past `limit` bytes."""
        found, size = [], 0
        for chunk in self.body():
            size += len(chunk)
            if size > limit:
                raise S3Error("MaxMessageLengthExceeded", f"The request body is over {limit} bytes")
            found.append(chunk)
        return b"".join(found)


def access_key_of(request: Request) -> str | None:
    """The access key id an Authorization header names, unverified (the rate limit's key)."""
    found = _KEY_ID.search(request.headers.get("Authorization", ""))
    return found.group(1) if found else None


def authenticate(request: Request, *, now: datetime | None = None) -> S3Request:
    """The verified request. 403 AccessDenied for a presigned URL, RequestTimeTooSkewed,
    SignatureDoesNotMatch; 400 for a malformed header; no header: anonymous (public projects)."""
    if any(name.lower() in _PRESIGNED for name in request.args):
        raise S3Error(
            "AccessDenied",
            "Presigned S3 URLs are not accepted: they would put a GitLab token in a URL. Ask the JSON API "
            "for a signed download URL instead: GET /api/v1/projects/<project>/objects/download?path=<path>",
            status=403,
        )
    headers = list(request.headers.items())  # once: werkzeug walks the WSGI environ for each listing
    header = request.headers.get("Authorization")
    content_sha256 = request.headers.get("X-Amz-Content-SHA256")
    if header is None:
        return _with_body(request, headers, None, content_sha256, None)
    auth = sigv4.parse_authorization(header)
    if len(auth.access_key) > MAX_TOKEN_LENGTH:
        raise S3Error("InvalidAccessKeyId", "The access key id is not a GitLab token (too long)", status=403)
    if content_sha256 is None:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    signed = sigv4.verify(
        auth,
        method=request.method,
        origin=f"{request.scheme}://{request.host}",
        path=_signed_path(request),
        query=_query(request),
        headers=headers,
        now=now or datetime.now(UTC),
    )
    # The key id is the token (and the secret): recognised as a Bearer token is (DESIGN 3.3): by its
    # prefix (glpat-, glcbt- job, gldt- deploy token), else tried as each kind GitLab may know it as.
    credential = Credential(CredentialKind.BEARER, auth.access_key, origin=client_address())
    return _with_body(request, headers, credential, content_sha256, signed)


def _with_body(
    request: Request,
    headers: list[tuple[str, str]],
    credential: Credential | None,
    content_sha256: str | None,
    signed: sigv4.SignedRequest | None,
) -> S3Request:
    raw = request_chunks(request)
    checks = PayloadChecks(
        content_md5=request.headers.get("Content-MD5"),
        checksums={a: v for k, v in headers if (a := checksum_algorithm(k)) is not None},
    )
    trailers = tuple(
        a
        for name in request.headers.get("X-Amz-Trailer", "").split(",")
        if (a := checksum_algorithm(name.strip()))
    )
    chunked: ChunkedBody | None = None
    mode = content_sha256 or UNSIGNED
    if mode in (STREAMING_UNSIGNED_TRAILER, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        if mode != STREAMING_UNSIGNED_TRAILER and signed is None:
            raise S3Error("InvalidRequest", f"{mode} needs a signed (Authorization) request")
        chunked = ChunkedBody(
            raw,
            signer=signed if mode != STREAMING_UNSIGNED_TRAILER else None,
            seed=signed.signature if signed is not None else "",
            trailer=mode != STREAMING_SIGNED,
        )
        checks.trailer_algorithms = trailers
        checks.length = _decoded_length(request)
        body = checked(chunked, checks, lambda: _trailer_checksums(chunked))
    elif mode == UNSIGNED or _HEX64.fullmatch(mode):
        checks.sha256_hex = None if mode == UNSIGNED else mode
        body = checked(raw, checks)
    elif mode.startswith("STREAMING-AWS4-ECDSA"):
        raise S3Error("NotImplemented", "SigV4a (ECDSA) signatures are not supported: use SigV4", status=501)
    else:
        raise S3Error(
            "InvalidArgument",
            "x-amz-content-sha256 must be a sha256 hex digest, UNSIGNED-PAYLOAD or STREAMING-…",
        )
    length = checks.length if chunked is not None else request.content_length
    return S3Request(credential, length, dict(checks.checksums), body, chunked)


def _decoded_length(request: Request) -> int | None:
    value = request.headers.get("X-Amz-Decoded-Content-Length")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise S3Error("InvalidArgument", "x-amz-decoded-content-length must be a number of bytes")
    return int(value)


def _trailer_checksums(body: ChunkedBody) -> dict[str, str]:
    return {a: v for k, v in body.trailers.items() if (a := checksum_algorithm(k)) is not None}


def _signed_path(request: Request) -> str:
    """The path as the client sent it (the server's raw request target, mount prefix included), decoded."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return unquote(str(raw).partition("?")[0].encode("latin-1").decode("utf-8", "replace"))
    return request.script_root + request.path


def _query(request: Request) -> list[tuple[str, str]]:
    """The query's parameters decoded as SigV4 encodes them (%20 for a space; a '+' is a '+')."""
    raw = request.environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", "replace")
    pairs = []
    for part in raw.split("&") if raw else []:
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs
