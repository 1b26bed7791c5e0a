"""Google Cloud Storage on google-cloud-storage: the only module that imports a Google SDK. Uploads are
JSON-API resumable sessions whose final chunk is held back until commit, so an object appears only when
the registry has checked it; downloads are V4 signed URLs (a key file, or keyless via IAM signBlob)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import google.auth
import google.auth.transport.requests
import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import service_account

from app.errors import NotFound, StorageUnavailable
from app.model.objects import BlobInfo, SignedURL
from app.outages import ride_out
from app.storage.base import CHUNK_SIZE, DirectUpload, StagedObject

UPLOAD_CHUNK = 8 * 1024 * 1024  # resumable chunks must be multiples of 256 KiB
OUTAGE_PATIENCE = 15.0  # seconds a request waits out Cloud Storage refusing connections before a 503


def _not_sent(error: BaseException) -> bool:
    """The connection could not be made, so nothing of the request was sent: safe to send again."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectionError) and "NewConnectionError" in type(reason).__name__


@dataclass
class _Session:
    """An open resumable upload: its URI, how much GCS holds, and the tail kept back for commit."""

    uri: str | None
    sent: int
    tail: bytes
    copy_from: str | None = None  # a direct upload: the complete object to copy into place


class GCSBackend:
    """Blobs under `prefix` in one bucket."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        client: Any,
        sign: Callable[[Any, int, str, str | None], str],
        chunk_size: int = UPLOAD_CHUNK,
    ) -> None:
        self._client = client
        self._bucket = client.bucket(bucket)
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._sign = sign
        self._chunk = chunk_size
        self._http: requests.Session = (
            client._http
        )  # the client's authorised session (anonymous on emulators)
        endpoint = client._connection.API_BASE_URL.rstrip("/")
        self._upload_base = f"{endpoint}/upload/storage/v1/b/{quote(bucket, safe='')}/o"

    def _key(self, key: str) -> str:
        return self._prefix + key

    def _request(self, method: str, url: str, expect: tuple[int, ...], **kwargs: Any) -> requests.Response:
        """One upload request; a connection refused (Cloud Storage or its emulator restarting) is tried
        again for up to OUTAGE_PATIENCE seconds."""
        try:
            response = ride_out(
                lambda: self._http.request(method, url, timeout=120, **kwargs), _not_sent, OUTAGE_PATIENCE
            )
        except requests.RequestException as e:
            raise StorageUnavailable("Cloud Storage is unreachable; try again later") from e
        if response.status_code not in expect:
            raise StorageUnavailable(f"Cloud Storage answered {response.status_code} to an upload")
        return response

    def stage(self, key: str, chunks: Iterable[bytes]) -> StagedObject:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        session = _Session(uri=None, sent=0, tail=b"")
        buffer = bytearray()
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                # Send whole chunks while more than one is buffered: the last one waits for commit.
                while len(buffer) > self._chunk:
                    self._send(key, session, bytes(buffer[: self._chunk]), final_size=None)
                    del buffer[: self._chunk]
        except BaseException:
            self._cancel(session)
            raise
        session.tail = bytes(buffer)
        return StagedObject(key=key, size=size, md5=digest.hexdigest(), handle=session)

    def _open(self, key: str) -> str:
        response = self._request(
            "POST",
            self._upload_base,
            (200,),
            params={"uploadType": "resumable", "name": self._key(key)},
            json={"name": self._key(key), "contentType": "application/octet-stream"},
            headers={"X-Upload-Content-Type": "application/octet-stream"},
        )
        return str(response.headers["Location"])

    def _send(
        self, key: str, session: _Session, data: bytes, *, final_size: int | None
    ) -> dict[str, Any] | None:
        """Send a chunk; the final one answers the object's resource (with its md5Hash)."""
        if session.uri is None:
            session.uri = self._open(key)
        end = session.sent + len(data) - 1
        total = "*" if final_size is None else str(final_size)
        content_range = f"bytes {session.sent}-{end}/{total}" if data else f"bytes */{total}"
        expect = (308,) if final_size is None else (200, 201)
        response = self._request(
            "PUT", session.uri, expect, data=data, headers={"Content-Range": content_range}
        )
        session.sent += len(data)
        if final_size is None:
            return None
        try:
            resource: dict[str, Any] = response.json()
        except ValueError:
            return None
        return resource

    def _cancel(self, session: _Session) -> None:
        if session.uri is not None:
            uri, session.uri = session.uri, None
            with contextlib.suppress(requests.RequestException):  # an abandoned session expires anyway
                self._http.delete(uri, timeout=30)  # GCS answers 499

    def commit(self, staged: StagedObject) -> None:
        session = staged.handle
        assert isinstance(session, _Session)
        if session.copy_from is not None:
            self._copy(session.copy_from, staged.key)
            self.delete(session.copy_from)
            session.copy_from = None
        elif session.uri is None and session.sent == 0:
            blob = self._blob(staged.key)
            blob.md5_hash = base64.b64encode(bytes.fromhex(staged.md5)).decode()  # GCS checks it
            try:
                blob.upload_from_string(session.tail, content_type="application/octet-stream")
            except gexc.BadRequest as e:
                raise StorageUnavailable(
                    "Cloud Storage refused bytes that differ from what the registry received; nothing "
                    "was kept, try again"
                ) from e
            except (gexc.GoogleAPIError, requests.RequestException) as e:
                raise StorageUnavailable("Cloud Storage is unreachable; try again later") from e
        else:
            stored = self._send(staged.key, session, session.tail, final_size=staged.size)
            session.uri = None
            md5 = _hex_md5(stored.get("md5Hash")) if stored else None
            if md5 is not None and md5 != staged.md5:  # composite objects have no md5: nothing to check
                self.delete(staged.key)  # a fresh key (a new version) or a content address: wrong bytes
                raise StorageUnavailable(
                    f"Cloud Storage stored different bytes than the registry sent (md5 {md5}, expected "
                    f"{staged.md5}); nothing was kept, try again"
                )
        session.tail = b""

    def discard(self, staged: StagedObject) -> None:
        session = staged.handle
        assert isinstance(session, _Session)
        session.tail = b""
        self._cancel(session)
        if session.copy_from is not None:
            self.delete(session.copy_from)
            session.copy_from = None

    def _copy(self, source: str, key: str) -> None:
        """A server-side rewrite, repeated until done (large objects take several calls)."""
        token = None
        try:
            while True:
                token, _, _ = self._blob(key).rewrite(self._blob(source), token=token)
                if token is None:
                    return
        except gexc.GoogleAPIError as e:
            raise StorageUnavailable("Cloud Storage copy failed") from e

    def begin_direct(self, temp_key: str, *, size: int, ttl: int) -> DirectUpload:
        """A signed URL that opens a resumable upload session; the session URI needs no signature."""
        return DirectUpload(
            kind="gcs_resumable",
            handle="",
            part_size=size,
            url=self._sign(self._blob(temp_key), ttl, "RESUMABLE", None),
            headers={"x-goog-resumable": "start"},
        )

    def finish_direct(self, temp_key: str, handle: str, *, size: int, key: str) -> StagedObject | None:
        """The object a finished session left, copied first to a key no signed URL reaches (the start URL
        stays valid until it expires and could replace the object); the copy's md5 is what is verified."""
        if self.stat(temp_key) is None:
            return None  # not finalised yet
        private = temp_key + ".complete"
        self._copy(temp_key, private)
        self.delete(temp_key)
        info = self.stat(private)
        if info is None:
            return None
        md5 = info.md5
        if md5 is None:  # a composed object has no md5: read it back inside Google's network
            digest = hashlib.md5(usedforsecurity=False)
            for chunk in self._read(private, 0, None):
                digest.update(chunk)
            md5 = digest.hexdigest()
        return StagedObject(
            key=key, size=info.size, md5=md5, handle=_Session(uri=None, sent=0, tail=b"", copy_from=private)
        )

    def read_staged(self, staged: StagedObject) -> Iterator[bytes]:
        session = staged.handle
        assert isinstance(session, _Session) and session.copy_from is not None
        return self._read(session.copy_from, 0, None)

    def assemble(self, part_keys: Sequence[str], key: str, *, temp_key: str) -> StagedObject:
        """Composed at temp_key, 32 sources a call (from the second call on, the first source is what
        was composed so far), read back for the md5 (a composite has none), copied into place on commit."""
        done = 0
        try:
            while done < len(part_keys):
                batch = part_keys[done : done + (31 if done else 32)]
                sources = ([self._blob(temp_key)] if done else []) + [self._blob(k) for k in batch]
                self._blob(temp_key).compose(sources)
                done += len(batch)
        except gexc.GoogleAPIError as e:
            self.delete(temp_key)
            raise StorageUnavailable("Cloud Storage could not compose the parts; try again later") from e
        digest, size = hashlib.md5(usedforsecurity=False), 0
        for chunk in self._read(temp_key, 0, None):
            digest.update(chunk)
            size += len(chunk)
        staged = _Session(uri=None, sent=0, tail=b"", copy_from=temp_key)
        return StagedObject(key=key, size=size, md5=digest.hexdigest(), handle=staged)

    def abort_direct(self, temp_key: str, handle: str) -> None:
        self.delete(temp_key)  # an unfinished session holds no object and expires after a week
        self.delete(temp_key + ".complete")  # left by a completion that crashed

    def _blob(self, key: str) -> Any:
        return self._bucket.blob(self._key(key))

    def stat(self, key: str) -> BlobInfo | None:
        try:
            blob = self._bucket.get_blob(self._key(key))
        except gexc.GoogleAPIError as e:
            raise StorageUnavailable("Cloud Storage is unavailable") from e
        if blob is None:
            return None
        md5 = _hex_md5(blob.md5_hash)
        return BlobInfo(key=key, size=int(blob.size or 0), md5=md5, modified=blob.updated)

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            return iter(())
        if self.stat(key) is None:
            raise NotFound("Object not found")
        return self._read(key, start, end)

    def _read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        """Ranged reads of CHUNK_SIZE; closing the iterator stops reading from GCS."""
        with self._blob(key).open("rb", chunk_size=CHUNK_SIZE) as reader:
            reader.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                try:
                    data = reader.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
                except gexc.GoogleAPIError as e:
                    raise StorageUnavailable("Cloud Storage is unavailable") from e
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        try:
            for blob in self._client.list_blobs(self._bucket, prefix=self._key(prefix)):
                yield BlobInfo(
                    key=blob.name[len(self._prefix) :],
                    size=int(blob.size or 0),
                    md5=_hex_md5(blob.md5_hash),
                    modified=blob.updated,
                )
        except gexc.GoogleAPIError as e:
            raise StorageUnavailable("Cloud Storage listing failed") from e

    def copy(self, source_key: str, destination_key: str) -> None:
        """A server-side rewrite (any size; the destination appears when the last call finishes)."""
        if self.stat(source_key) is None:
            raise NotFound("Object not found")
        self._copy(source_key, destination_key)

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete()
        except gexc.NotFound:
            pass
        except gexc.GoogleAPIError as e:
            raise StorageUnavailable("Cloud Storage is unavailable") from e

    def delete_many(self, keys: Sequence[str]) -> None:
        """Batch requests of 100 deletions (the JSON API's batch limit). Failures of single deletions
        (absent objects) are ignored: the deletion job's final listing catches anything left."""
        for start in range(0, len(keys), 100):
            batch = keys[start : start + 100]
            try:
                with self._client.batch(raise_exception=False):
                    for key in batch:
                        self._blob(key).delete()
            except gexc.GoogleAPIError as e:
                raise StorageUnavailable("Cloud Storage batch delete failed") from e
            except ValueError:  # an endpoint without multipart batch answers (fake-gcs-server): one by one
                for key in batch:
                    self.delete(key)

    def remove_stale_staging(self, older_than: float) -> int:
        return 0  # an unfinished resumable session stores no object and expires after a week

    def sign_download(self, key: str, *, ttl: int, disposition: str | None = None) -> SignedURL:
        url = self._sign(self._blob(key), ttl, "GET", disposition)
        return SignedURL(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=ttl))

    def check(self) -> None:
        try:
            self._bucket.reload()
        except gexc.GoogleAPIError as e:
            raise StorageUnavailable("Cloud Storage bucket is not reachable") from e


def _hex_md5(b64: str | None) -> str | None:
    return base64.b64decode(b64).hex() if b64 else None


def build_gcs_backend(
    *, bucket: str, prefix: str, emulator_host: str | None, public_url: str | None
) -> GCSBackend:
    """The backend with Google's conventions: credentials from google.auth.default() (a key file through
    GOOGLE_APPLICATION_CREDENTIALS also signs; otherwise keyless signing through IAM signBlob, as on GKE
    with Workload Identity); with an emulator host, API calls go there anonymously and URLs are signed
    for it."""
    credentials, project = google.auth.default(
        scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
    )
    if emulator_host:
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        client_options = {"api_endpoint": emulator_host}
        client = storage.Client(
            project=project or "registry", credentials=anonymous, client_options=client_options
        )
    else:
        client = storage.Client(project=project, credentials=credentials)
    endpoint = public_url or emulator_host

    def sign(blob: Any, ttl: int, method: str, disposition: str | None) -> str:
        options: dict[str, Any] = {"version": "v4", "expiration": timedelta(seconds=ttl), "method": method}
        if disposition:
            options["response_disposition"] = disposition
        if endpoint:
            options["api_access_endpoint"] = endpoint
        if isinstance(credentials, service_account.Credentials):  # a key file: sign locally
            return str(blob.generate_signed_url(credentials=credentials, **options))
        if not credentials.valid:  # keyless (Workload Identity): one IAM signBlob call per URL
            credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
        email = getattr(credentials, "service_account_email", None)
        return str(
            blob.generate_signed_url(service_account_email=email, access_token=credentials.token, **options)
        )

    return GCSBackend(bucket=bucket, prefix=prefix, client=client, sign=sign)
