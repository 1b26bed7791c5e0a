"""Local-directory storage (the embedded default): atomic streamed writes and app-signed download URLs."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import os
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from itsdangerous import BadSignature, Signer

from app.errors import Conflict, NotFound, PermissionDenied, StorageUnavailable
from app.model.objects import BlobInfo, SignedURL
from app.storage.base import CHUNK_SIZE, DirectUpload, StagedObject, UploadPart

BLOB_ROUTE = "/-/blobs/"


class LocalBackend:
    """Blobs as files under `root`; staged in `root/.tmp`, made visible by rename."""

    def __init__(self, *, root: Path, secret_key: str, public_url: str | None) -> None:
        self.root = root.resolve()
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._root_dir = str(self.root) + os.sep
        self._tmp_dir = str(self._tmp) + os.sep
        # Derive the signing key once: itsdangerous would re-derive it on every URL (the GET hot path).
        derived = hmac.new(secret_key.encode(), b"data-registry.blob-download", hashlib.sha256).digest()
        self._signer = Signer(derived, key_derivation="none", digest_method=hashlib.sha256)
        upload = hmac.new(secret_key.encode(), b"data-registry.blob-upload", hashlib.sha256).digest()
        self._upload_signer = Signer(upload, key_derivation="none", digest_method=hashlib.sha256)
        self._public_url = public_url or ""

    def _path(self, key: str) -> Path:
        full = os.path.normpath(os.path.join(self._root_dir, key))
        if not full.startswith(self._root_dir) or full.startswith(self._tmp_dir):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return Path(full)

    def stage(self, key: str, chunks: Iterable[bytes]) -> StagedObject:
        self._path(key)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        digest, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
                stored = os.fstat(out.fileno()).st_size
            if stored != size:  # the bytes go from the stream to the file: a short write is the failure left
                raise StorageUnavailable(
                    f"The disk stored {stored} of {size} bytes; nothing was kept, try again"
                )
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StagedObject(key=key, size=size, md5=digest.hexdigest(), handle=tmp_name)

    def commit(self, staged: StagedObject) -> None:
        final = self._path(staged.key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            # modified = made visible, from the clock the index's times come from (the file system's own
            # is coarse): the usage sweep compares the two
            now = time.time_ns()
            os.utime(str(staged.handle), ns=(now, now))
            os.replace(str(staged.handle), final)
            staged.handle = None  # the temp name is free again; discard must not touch it
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            self.discard(staged)
            raise Conflict("A path and an object inside it cannot both exist on this storage") from None

    def discard(self, staged: StagedObject) -> None:
        if staged.handle is not None:
            Path(str(staged.handle)).unlink(missing_ok=True)
            staged.handle = None

    def stat(self, key: str) -> BlobInfo | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if _is_dir(st.st_mode):
            return None
        return BlobInfo(key=key, size=st.st_size, md5=None, modified=_mtime(st))

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound("Object not found") from None
        return _read_range(handle, start, end)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        """Blobs in key order, like a bucket listing, walking only the directories the prefix allows."""
        base = self.root / prefix
        top = base if prefix.endswith("/") or base.is_dir() else base.parent
        yield from (b for b in self._walk(top) if b.key.startswith(prefix))

    def _walk(self, directory: Path) -> Iterator[BlobInfo]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in sorted(entries, key=lambda e: e.name + "/" if e.is_dir() else e.name):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if path != self._tmp:
                    yield from self._walk(path)
            elif entry.is_file(follow_symlinks=False):
                key = path.relative_to(self.root).as_posix()
                st = entry.stat()
                yield BlobInfo(key=key, size=st.st_size, md5=None, modified=_mtime(st))

    def copy(self, source_key: str, destination_key: str) -> None:
        """Staged like an upload (so atomic, fsynced) from the source file."""
        self._path(destination_key)
        staged = self.stage(destination_key, self.read(source_key))
        try:
            self.commit(staged)
        finally:
            self.discard(staged)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:  # prune empty directories up to the root
            if parent == self.root:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.delete(key)

    def remove_stale_staging(self, older_than: float) -> int:
        removed = 0
        for entry in os.scandir(self._tmp):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def sign_download(self, key: str, *, ttl: int, disposition: str | None = None) -> SignedURL:
        expires = int(time.time()) + ttl
        # The Content-Disposition the blob route is to send, signed with the rest ("0": none), as a
        # bucket signs response-content-disposition.
        sent = b"d" + base64.urlsafe_b64encode(disposition.encode()).rstrip(b"=") if disposition else b"0"
        token = self._signer.sign(_encode(key) + b"." + str(expires).encode() + b"." + sent).decode()
        return SignedURL(
            url=f"{self._public_url}{BLOB_ROUTE}{token}",
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    def resolve_signed(self, token: str) -> tuple[str, str | None]:
        """(key, the Content-Disposition to answer with or None) a signed blob token grants, or
        PermissionDenied when it is forged or expired."""
        key, (expires, sent) = _unsign(self._signer, token, 2, digits=1)
        if int(expires) < time.time():
            raise PermissionDenied("Signed URL expired")
        if sent == b"0":
            return key, None
        try:
            return key, base64.urlsafe_b64decode(sent[1:] + b"=" * (-len(sent[1:]) % 4)).decode()
        except ValueError:
            raise PermissionDenied("Signed URL is invalid") from None

    def begin_direct(self, temp_key: str, *, size: int, ttl: int) -> DirectUpload:
        """One app-signed URL taking the whole file with a PUT (the app is the bucket here)."""
        self._path(temp_key)
        expires = int(time.time()) + ttl
        token = self._upload_signer.sign(_encode(temp_key) + f".{size}.{expires}".encode()).decode()
        url = f"{self._public_url}{BLOB_ROUTE}{token}"
        return DirectUpload(
            kind="parts",
            handle="",
            part_size=size,
            parts=[UploadPart(number=1, offset=0, size=size, url=url)],
        )

    def resolve_upload(self, token: str) -> tuple[str, int]:
        """(temp key, size limit) a signed upload token grants, or PermissionDenied."""
        key, (size, expires) = _unsign(self._upload_signer, token, 2)
        if int(expires) < time.time():
            raise PermissionDenied("Signed URL expired")
        return key, int(size)

    def finish_direct(self, temp_key: str, handle: str, *, size: int, key: str) -> StagedObject | None:
        """Moves the uploaded file out of the upload URL's reach first, then hashes what was moved: a PUT
        racing `complete` can no longer change the bytes that are verified and committed."""
        temp = self._path(temp_key)
        self._path(key)
        fd, private = tempfile.mkstemp(dir=self._tmp, prefix="direct-")
        os.close(fd)
        try:
            os.replace(temp, private)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            Path(private).unlink(missing_ok=True)
            return None
        digest = hashlib.md5(usedforsecurity=False)
        with open(private, "rb") as data:
            while chunk := data.read(CHUNK_SIZE):
                digest.update(chunk)
            received = data.tell()
        return StagedObject(key=key, size=received, md5=digest.hexdigest(), handle=private)

    def abort_direct(self, temp_key: str, handle: str) -> None:
        self.delete(temp_key)

    def read_staged(self, staged: StagedObject) -> Iterator[bytes]:
        return _read_range(open(str(staged.handle), "rb"), 0, None)  # closed by the reader

    def assemble(self, part_keys: Sequence[str], key: str, *, temp_key: str) -> StagedObject:
        """The parts copied one after the other into a staged file (md5 on the way, 1 MiB at a time)."""
        return self.stage(key, (chunk for part in part_keys for chunk in self.read(part)))

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"storage directory {self.root} is not writable")


def _encode(key: str) -> bytes:
    return base64.urlsafe_b64encode(key.encode()).rstrip(b"=")


def _unsign(signer: Signer, token: str, fields: int, digits: int | None = None) -> tuple[str, list[bytes]]:
    """The key and trailing fields of a token `signer` made (the first `digits` of them, default all,
    numbers), or PermissionDenied."""
    try:
        encoded_key, *rest = signer.unsign(token).split(b".")
        key = base64.urlsafe_b64decode(encoded_key + b"=" * (-len(encoded_key) % 4)).decode()
        if len(rest) != fields or not all(field.isdigit() for field in rest[:digits]):
            raise ValueError("malformed token")
    except (BadSignature, ValueError):
        raise PermissionDenied("Signed URL is invalid") from None
    return key, rest


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, UTC)


def _is_dir(mode: int) -> bool:
    return stat.S_ISDIR(mode)


def _read_range(handle: io.BufferedReader, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
