"""The S3 backend's object path: GetObject, a small PutObject and UploadPart as single signed HTTP
requests over kept-alive connections of our own (http.client), with none of an SDK call's machinery
(parameter validation, endpoint rules, a dozen event hooks, a urllib3 pool, response parsing into a dict:
together ~0.4 ms of a worker's CPU per call, most of a door GET's own cost, measured; for a part, also a
second SHA-256 of its bytes to sign them over plain HTTP). The bucket's address,
region and addressing style are botocore's, resolved once from a presigned URL; the credentials are the
client's own (refreshed as botocore refreshes them); the SigV4 header signature is the one AWS documents,
with Content-MD5 signed, so the bucket refuses bytes that differ from what the registry read (BadDigest),
and the ETag it answers is checked by the caller as before. Through a proxy, or with a client
certificate, the request goes over botocore's own HTTP session instead. Answers become the backend's
errors: 404 NotFound, the rest StorageUnavailable; connection failures and 5xx are retried by the
caller's ride_out like any SDK call."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import BotoCoreError, HTTPClientError
from botocore.httpsession import get_cert_path
from urllib3.exceptions import HTTPError

from app.errors import NotFound, StorageUnavailable
from app.storage.s3_connections import Answer, ConnectionFailed, Connections, SessionAnswer

IDLE_CONNECTIONS = 32  # kept per worker process; more at once are opened and closed after use
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_ERROR_BODY_LIMIT = 64 * 1024
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNSIGNED = "UNSIGNED-PAYLOAD"  # the body is covered by the signed Content-MD5 instead


class BucketAnswered(HTTPClientError):  # type: ignore[misc]  # botocore ships no types
    """A 5xx from the bucket (a restart): transient, as botocore's own retries treat it."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(error=f"HTTP {status} {code}")
        self.status, self.code = status, code


class BucketRefused(StorageUnavailable):
    """A 4xx other than a missing object: the bucket will not do this request as it is."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class BucketUnreachable(HTTPClientError):  # type: ignore[misc]
    """The connection to the bucket failed (refused, reset, timed out): transient."""

    def __init__(self, error: ConnectionFailed) -> None:
        super().__init__(error=f"{type(error).__name__}: {error}")


@dataclass(frozen=True)
class Address:
    """Where and how objects of the bucket are asked for, as botocore resolved it."""

    scheme: str
    host: str  # the Host header (host, and port when not the scheme's default)
    base_path: str  # "/<bucket>/" path-style, "/" virtual-hosted; a key follows
    region: str
    service: str


def resolve_address(presigned_url: str) -> Address:
    """The Address a presigned GetObject URL for the key `k` shows."""
    parts = urlsplit(presigned_url)
    credential = parse_qs(parts.query).get("X-Amz-Credential", [""])[0].split("/")
    if len(credential) != 5 or not parts.path.endswith("/k"):
        raise ValueError(f"not a SigV4 presigned URL for the key k: {parts.scheme}://{parts.netloc}")
    return Address(parts.scheme, parts.netloc, parts.path[:-1], credential[2], credential[3])


class Signer:
    """AWS Signature Version 4 in the Authorization header, the signing key derived once a day."""

    def __init__(self, address: Address, credentials: Callable[[], Any]) -> None:
        self._address = address
        self._credentials = credentials  # botocore's get_frozen_credentials (refreshes when due)
        self._keys: dict[tuple[str, str], bytes] = {}

    def _key(self, secret: str, day: str) -> bytes:
        found = self._keys.get((secret, day))
        if found is None:
            found = ("AWS4" + secret).encode()
            for part in (day, self._address.region, self._address.service, "aws4_request"):
                found = hmac.new(found, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): found}  # yesterday's and a rotated secret's are dropped
        return found

    def headers(
        self, method: str, path: str, signed: dict[str, str], payload: str, query: str = ""
    ) -> dict[str, str]:
        """`signed` (lowercase names) plus host, date, payload hash, token and Authorization; `query` is
        the canonical query string (canonical_query)."""
        frozen = self._credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        headers = {
            **signed,
            "host": self._address.host,
            "x-amz-date": stamp,
            "x-amz-content-sha256": payload,
        }
        if frozen is None:  # an anonymous client: unsigned requests
            return headers
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                path,
                query,
                *(f"{name}:{headers[name].strip()}" for name in names),
                "",
                ";".join(names),
                payload,
            ]
        )
        scope = f"{stamp[:8]}/{self._address.region}/{self._address.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key(frozen.secret_key, stamp[:8]), to_sign.encode(), hashlib.sha256)
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature.hexdigest()}"
        )
        return headers


class LeanObjects:
    """Whole-object GET and PUT for one bucket of `client` (a boto3 S3 client)."""

    def __init__(self, client: Any, bucket: str, call: Callable[[Callable[[], Any]], Any]) -> None:
        self._client = client
        self._bucket = bucket
        self._call = call  # ride_out with the backend's patience (connection failures and 5xx retried)
        self._session = client._endpoint.http_session  # botocore's URLLib3Session: the proxy path
        self._ready: tuple[Address, Signer, Connections | None] | None = None

    def _setup(self) -> tuple[Address, Signer, Connections | None]:
        """Resolved at the first request (botocore's endpoint rules need no network, but the worker
        should make its own connections): the address, the signer, and our connections unless a proxy
        or a client certificate is configured."""
        if self._ready is None:
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": "k"}
            )
            address = resolve_address(url)
            signer = Signer(address, self._client._request_signer._credentials.get_frozen_credentials)
            session, config = self._session, self._client.meta.config
            direct = not session._proxy_config.proxy_url_for(url) and session._cert_file is None
            connections = (
                Connections(
                    address.scheme,
                    address.host,
                    connect_timeout=float(config.connect_timeout),
                    read_timeout=float(config.read_timeout),
                    certificates=get_cert_path(session._verify) if session._verify is not False else False,
                    idle=IDLE_CONNECTIONS,
                )
                if direct
                else None
            )
            self._ready = (address, signer, connections)
        return self._ready

    def _send(
        self,
        method: str,
        key: str,
        signed: dict[str, str],
        body: bytes | bytearray | None = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        """The answer to a 2xx (body unread), else the error it is."""
        address, signer, connections = self._setup()
        path = address.base_path + quote(key, safe="/~")
        payload = _EMPTY_SHA256 if body is None else _UNSIGNED
        canonical = canonical_query(query or {})
        target = f"{path}?{canonical}" if canonical else path

        def once() -> Answer:
            headers = signer.headers(method, path, signed, payload, canonical)
            answer: Answer
            if connections is not None:
                try:
                    answer = connections.exchange(method, target, headers, body)
                except ConnectionFailed as e:
                    raise BucketUnreachable(e) from e
            else:
                url = f"{address.scheme}://{address.host}{target}"
                request = AWSPreparedRequest(method, url, headers, body, stream_output=True)
                response = self._session.send(request)
                answer = SessionAnswer(response.raw, response.status_code)
            if answer.status < 300:
                return answer
            try:
                found = _CODE.search(answer.read(_ERROR_BODY_LIMIT) or b"") if method != "HEAD" else None
            finally:
                answer.abandon()
            code = found.group(1).decode("utf-8", "replace") if found else str(answer.status)
            if answer.status >= 500:
                raise BucketAnswered(answer.status, code)
            if answer.status == 404 and code in ("NoSuchKey", "404"):
                raise NotFound("Object not found")
            if code == "BadDigest":
                raise BucketRefused(
                    "S3 refused bytes that differ from what the registry received (BadDigest); "
                    "nothing was kept, try again",
                    code,
                )
            raise BucketRefused(f"S3 refused {method} of an object: {code}", code)

        try:
            result: Answer = self._call(once)
            return result
        except BucketAnswered as e:
            raise StorageUnavailable(f"S3 is failing ({e.code}); try again later") from e
        except BotoCoreError as e:
            raise StorageUnavailable("S3 is unreachable; try again later") from e

    def delete(self, key: str) -> None:
        """DeleteObject (a missing object is no error, as in S3)."""
        answer = self._send("DELETE", key, {})
        try:
            answer.read(_ERROR_BODY_LIMIT)
        except (OSError, http.client.HTTPException, HTTPError) as e:
            answer.abandon()
            raise StorageUnavailable("S3 stopped answering a DELETE; try again later") from e
        answer.done()

    def get(self, key: str, *, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
        """Bytes [start, end) of the object at the bucket's `key`, streamed in chunks of chunk_size."""
        signed = {}
        if start or end is not None:
            signed["range"] = f"bytes={start}-{'' if end is None else end - 1}"
        return _stream(self._send("GET", key, signed), chunk_size)

    def put(
        self,
        key: str,
        body: bytes | bytearray,
        check: dict[str, str],
        *,
        part: tuple[str, int] | None = None,
    ) -> dict[str, Any]:
        """PUT a body (PutObject), or with `part` (upload id, part number) one part of a multipart
        upload (UploadPart), with the header the bucket checks its bytes by (`check`: Content-MD5 or
        x-amz-checksum-crc32, signed); the answer's headers as the SDK gives them (ETag, encryption)."""
        signed = {**check, "content-length": str(len(body))}
        query = {"partNumber": str(part[1]), "uploadId": part[0]} if part else None
        answer = self._send("PUT", key, signed, body, query)
        try:
            answer.read(_ERROR_BODY_LIMIT)  # an empty body: the connection serves the next request
        except (OSError, http.client.HTTPException, HTTPError) as e:
            answer.abandon()
            raise StorageUnavailable("S3 stopped answering a PUT; try again later") from e
        answer.done()
        stored: dict[str, Any] = {"ETag": answer.header("ETag") or ""}
        for name, field in (
            ("x-amz-server-side-encryption", "ServerSideEncryption"),
            ("x-amz-server-side-encryption-customer-algorithm", "SSECustomerAlgorithm"),
        ):
            value = answer.header(name)
            if value is not None:
                stored[field] = value
        return stored


class PartChecksums:
    """Whether parts go with a CRC-32 (True) or an md5 (False): asked of the bucket once (verifies_crc32),
    at the first upload; md5 while the bucket cannot be asked (it is failing: asked again next time)."""

    def __init__(self, objects: LeanObjects, probe_key: str) -> None:
        self._objects, self._probe_key = objects, probe_key
        self._crc32: bool | None = None
        self._lock = threading.Lock()

    def crc32(self) -> bool:
        if self._crc32 is None:
            with self._lock:  # concurrent first uploads wait for one probe
                if self._crc32 is None:
                    try:
                        self._crc32 = verifies_crc32(self._objects, self._probe_key)
                    except StorageUnavailable:
                        return False
        return self._crc32


def verifies_crc32(objects: LeanObjects, key: str) -> bool:
    """Whether the bucket checks x-amz-checksum-crc32 (AWS, MinIO and SeaweedFS do; a bucket that does not
    know the header ignores it): a PUT at `key` whose checksum is wrong is refused with a 4xx and one whose
    checksum is right is kept. The probe object is deleted again."""
    body = b"the registry asks whether this bucket checks CRC-32 checksums"
    try:
        objects.put(key, body, {"x-amz-checksum-crc32": crc32_header(body + b".")})
        verified = False
    except BucketRefused:
        verified = True
    if verified:
        try:
            objects.put(key, body, {"x-amz-checksum-crc32": crc32_header(body)})
        except BucketRefused:
            return False
    with contextlib.suppress(StorageUnavailable):  # a probe object left behind costs 62 bytes
        objects.delete(key)
    return verified


def crc32_header(data: bytes) -> str:
    """An x-amz-checksum-crc32 header's value."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def canonical_query(query: dict[str, str]) -> str:
    """SigV4's canonical query string: names and values percent-encoded (RFC 3986 unreserved characters
    kept), sorted by name; also what is sent."""
    encoded = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in query.items())
    return "&".join(f"{name}={value}" for name, value in encoded)


def _stream(answer: Answer, chunk_size: int) -> Iterator[bytes]:
    """The body; read to its end, the connection serves the next request; closed early (the client went
    away) or cut short by the bucket, it is closed."""
    complete = False
    try:
        while chunk := answer.read(chunk_size):
            yield chunk
        if answer.truncated():
            raise StorageUnavailable("S3 stopped sending the object; try again later")
        complete = True
    except (OSError, http.client.HTTPException, HTTPError) as e:
        raise StorageUnavailable("S3 stopped sending the object; try again later") from e
    finally:
        if complete:
            answer.done()
        else:
            answer.abandon()
