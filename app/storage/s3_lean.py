"""The S3 backend's small-object path: GetObject and a small PutObject sent as a presigned request over
the boto3 client's own HTTP session (its connection pool, TLS verification, proxies and timeouts), with
none of the rest of an SDK call (parameter validation, endpoint rules, a dozen event hooks, response
parsing into a dict: ~1 ms of a worker's CPU per call, most of a door GET's own cost, measured). The
request is signed as botocore signs any presigned URL; Content-MD5 is a signed header, so the bucket
refuses bytes that differ from what the registry read (BadDigest), and the ETag it answers is checked by
the caller as before. Answers become the backend's errors: 404 NotFound, the rest StorageUnavailable;
connection failures and 5xx are retried by the caller's ride_out like any SDK call."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import BotoCoreError, HTTPClientError
from urllib3.exceptions import HTTPError

from app.errors import NotFound, StorageUnavailable

PRESIGN_TTL = 300  # seconds; the URL is sent at once and never leaves the registry
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_ERROR_BODY_LIMIT = 64 * 1024


class BucketAnswered(HTTPClientError):  # type: ignore[misc]  # botocore ships no types
    """A 5xx from the bucket (a restart): transient, as botocore's own retries treat it."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(error=f"HTTP {status} {code}")
        self.status, self.code = status, code


class LeanObjects:
    """Whole-object GET and PUT for one bucket through `client` (a boto3 S3 client)."""

    def __init__(self, client: Any, bucket: str, call: Callable[[Callable[[], Any]], Any]) -> None:
        self._client = client
        self._bucket = bucket
        # botocore's URLLib3Session: the pool, certificates, proxies and timeouts the client's calls use
        self._http = client._endpoint.http_session
        self._call = call  # ride_out with the backend's patience (connection failures and 5xx retried)

    def _url(self, operation: str, params: dict[str, Any]) -> str:
        url: str = self._client.generate_presigned_url(
            operation, Params={"Bucket": self._bucket, **params}, ExpiresIn=PRESIGN_TTL
        )
        return url

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Any:
        """The raw urllib3 response of a 2xx (body unread), else the error it is."""

        def once() -> Any:
            request = AWSPreparedRequest(method, url, headers, body, stream_output=True)
            response = self._http.send(request)
            if response.status_code < 300:
                return response.raw
            raw = response.raw
            try:
                found = _CODE.search(raw.read(_ERROR_BODY_LIMIT) or b"") if method != "HEAD" else None
            finally:
                raw.close()
            code = found.group(1).decode("utf-8", "replace") if found else str(response.status_code)
            if response.status_code >= 500:
                raise BucketAnswered(response.status_code, code)
            if response.status_code == 404 and code in ("NoSuchKey", "404"):
                raise NotFound("Object not found")
            if code == "BadDigest":
                raise StorageUnavailable(
                    "S3 refused bytes that differ from what the registry received (BadDigest); "
                    "nothing was kept, try again"
                )
            raise StorageUnavailable(f"S3 refused {method} of an object: {code}")

        try:
            return self._call(once)
        except BucketAnswered as e:
            raise StorageUnavailable(f"S3 is failing ({e.code}); try again later") from e
        except BotoCoreError as e:
            raise StorageUnavailable("S3 is unreachable; try again later") from e

    def get(self, key: str, *, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
        """Bytes [start, end) of the object at the bucket's `key`, streamed in chunks of chunk_size."""
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        raw = self._send("GET", self._url("get_object", {"Key": key}), headers)
        return _stream(raw, chunk_size)

    def put(self, key: str, body: bytes, md5_base64: str) -> dict[str, Any]:
        """PUT a small body; the answer's headers as PutObject's (ETag, server-side encryption)."""
        url = self._url("put_object", {"Key": key, "ContentMD5": md5_base64})
        headers = {"Content-MD5": md5_base64, "Content-Length": str(len(body))}
        raw = self._send("PUT", url, headers, body)
        try:
            raw.read()  # an empty body: the connection goes back to the pool
        finally:
            raw.release_conn()
        answer: dict[str, Any] = {"ETag": raw.headers.get("ETag", "")}
        for name, field in (
            ("x-amz-server-side-encryption", "ServerSideEncryption"),
            ("x-amz-server-side-encryption-customer-algorithm", "SSECustomerAlgorithm"),
        ):
            if name in raw.headers:
                answer[field] = raw.headers[name]
        return answer


def _stream(raw: Any, chunk_size: int) -> Iterator[bytes]:
    """The body; read to its end, the connection goes back to the pool; closed early (client gone), it
    is closed."""
    complete = False
    try:
        yield from raw.stream(chunk_size, decode_content=False)
        complete = True
    except HTTPError as e:
        raise StorageUnavailable("S3 stopped sending the object; try again later") from e
    finally:
        if complete:
            raw.release_conn()
        else:
            raw.close()
