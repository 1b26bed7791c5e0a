"""S3 multipart uploads through the door (create, upload part, complete, abort, list): parts stream to
blobs of their own under the upload's key, holding quota as they arrive; completion joins them inside the
bucket (StorageBackend.assemble) and commits the whole through the same checks as a PUT (app.uploads)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from app.auth import Authorizer
from app.db.upload_parts import MultipartSessions
from app.errors import FileTooLarge, RegistryError
from app.manifests import MAX_MANIFEST_BYTES
from app.model.conditions import UNCONDITIONAL, WriteCondition
from app.model.identity import Action, Credential, Grant
from app.model.multipart import (
    MAX_PART_NUMBER,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    UploadedPart,
    multipart_etag,
    part_key,
    parts_prefix,
)
from app.model.paths import ObjectPath, storage_key_for
from app.model.projects import ProjectRef
from app.model.sizes import human_size
from app.model.upload_sessions import UploadSession
from app.s3_errors import S3Error
from app.storage.base import StorageBackend
from app.uploads import Upload, Uploads


@dataclass(frozen=True)
class Completed:
    """A completed multipart upload: the indexed object and the ETag S3 gives such an upload."""

    upload: Upload
    etag: str  # "<md5 of the parts' md5s>-<count>" (the object's own md5 is in upload.info)


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error(
        "NoSuchUpload",
        f"The upload {upload_id} does not exist here: completed, aborted, expired, or of another key",
        status=404,
    )


class DoorUploads:
    """Multipart uploads of GitLab projects' objects for callers GitLab lets write."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        uploads: Uploads,
        storage: StorageBackend,
        sessions: MultipartSessions,
        ttl: int,
        max_file_size: int,
    ) -> None:
        self._authorizer, self._uploads, self._storage = authorizer, uploads, storage
        self._sessions = sessions
        self._ttl, self._max_file_size = timedelta(seconds=ttl), max_file_size

    def create(self, credential: Credential | None, ref: ProjectRef, path: str) -> UploadSession:
        """Open an upload at `path` (checked as a PUT's is; 413 when not one more byte fits)."""
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        self._uploads.admit(grant, obj_path, None)
        now = datetime.now(UTC)
        session = UploadSession(
            id=secrets.token_hex(16),
            project_id=grant.project.id,
            path=obj_path.value,
            size=0,
            md5=None,
            overwrite=True,
            handle="",
            uploader_id=grant.actor.user_id if grant.actor else None,
            created_at=now,
            expires_at=now + self._ttl,
        )
        self._sessions.open(session)
        return session

    def upload_part(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        upload_id: str,
        number: int,
        body: Iterable[bytes],
        *,
        size: int | None,
    ) -> UploadedPart:
        """Stream one part to a blob of its own, its declared size reserved against the quota while it
        arrives; a part sent again replaces the one of its number. The part's ETag is its md5."""
        grant, obj_path, session = self._open(credential, ref, path, upload_id)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", f"Part number must be an integer from 1 to {MAX_PART_NUMBER}")
        if size is not None and size > MAX_PART_SIZE:
            raise S3Error("EntityTooLarge", f"A part may not exceed {human_size(MAX_PART_SIZE)}")
        reserved, now = size or 0, datetime.now(UTC)
        if session.size + reserved > self._max_file_size:
            raise FileTooLarge(f"File too large: the limit is {human_size(self._max_file_size)}")
        if not self._sessions.reserve(session.id, reserved, now, now + self._ttl):
            raise no_such_upload(upload_id)
        try:
            self._uploads.admit(grant, obj_path, 0 if reserved else None)  # the reservation counts
            part = self._store_part(session.id, number, self._limited(body))
        except BaseException:
            self._sessions.reserve(session.id, -reserved, now, now + self._ttl)
            raise
        replaced = self._sessions.add_part(session.id, part, reserved, datetime.now(UTC))
        if replaced is None:  # completed or aborted while the part arrived
            self._delete([part.key])
            raise no_such_upload(upload_id)
        self._delete(replaced)
        return part

    def _store_part(self, session_id: str, number: int, body: Iterable[bytes]) -> UploadedPart:
        key = part_key(session_id, number, secrets.token_hex(4))
        staged = self._storage.stage(key, body)
        try:
            self._storage.commit(staged)
        finally:
            self._storage.discard(staged)
        return UploadedPart(number, key, staged.size, staged.md5, datetime.now(UTC))

    def _limited(self, body: Iterable[bytes]) -> Iterator[bytes]:
        size = 0
        for chunk in body:
            size += len(chunk)
            if size > MAX_PART_SIZE:
                raise S3Error("EntityTooLarge", f"A part may not exceed {human_size(MAX_PART_SIZE)}")
            yield chunk

    def complete(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        upload_id: str,
        listed: Sequence[tuple[int, str]],
        condition: WriteCondition = UNCONDITIONAL,
    ) -> Completed:
        """Join the listed parts (numbers ascending, ETags as UploadPart answered them) into the object
        at the upload's path, checked and committed as a PUT (quota again, content address, condition,
        the version it replaces to the trash). A refusal leaves the upload open, as S3 does."""
        grant, obj_path, session = self._open(credential, ref, path, upload_id)
        if not listed:
            raise S3Error("MalformedXML", "CompleteMultipartUpload must list at least one part")
        if any(later <= earlier for (earlier, _), (later, _) in pairwise(listed)):
            raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order")
        if not self._sessions.claim(session.id):
            raise S3Error("OperationAborted", "This upload is being completed by another request", status=409)
        try:
            parts = self._chosen(listed, self._sessions.parts(session.id))
            upload = self._commit(grant, obj_path, session, parts, condition)
        except BaseException:
            self._sessions.release(session.id)
            raise
        self._drop(session.id)
        return Completed(upload=upload, etag=multipart_etag([p.md5 for p in parts]))

    def _chosen(self, listed: Sequence[tuple[int, str]], parts: list[UploadedPart]) -> list[UploadedPart]:
        by_number = {part.number: part for part in parts}
        chosen = []
        for number, etag in listed:
            part = by_number.get(number)
            if part is None or etag.strip().strip('"').lower() != part.md5:
                raise S3Error(
                    "InvalidPart",
                    f"Part {number} was not uploaded, or its ETag is not {etag}: list the ETags UploadPart "
                    "answered",
                )
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < MIN_PART_SIZE:
                raise S3Error(
                    "EntityTooSmall",
                    f"Part {part.number} is {human_size(part.size)}: every part but the last must be at "
                    f"least {human_size(MIN_PART_SIZE)}",
                )
        if sum(part.size for part in chosen) > self._max_file_size:
            raise FileTooLarge(f"File too large: the limit is {human_size(self._max_file_size)}")
        return chosen

    def _commit(
        self,
        grant: Grant,
        obj_path: ObjectPath,
        session: UploadSession,
        parts: list[UploadedPart],
        condition: WriteCondition,
    ) -> Upload:
        keys = [part.key for part in parts]
        staged = self._storage.assemble(
            keys, storage_key_for(grant.project.id, obj_path), temp_key=parts_prefix(session.id) + "whole"
        )
        try:
            address = obj_path.content_address
            manifest = None
            if address is not None and address.is_dir and staged.size <= MAX_MANIFEST_BYTES:
                manifest = b"".join(chunk for key in keys for chunk in self._storage.read(key))
            return self._uploads.place(grant, obj_path, staged, condition, manifest)  # claimed: holds 0
        finally:
            self._storage.discard(staged)

    def abort(self, credential: Credential | None, ref: ProjectRef, path: str, upload_id: str) -> None:
        """Drop an upload and every part it holds (its reservation with it)."""
        _, _, session = self._open(credential, ref, path, upload_id)
        self._storage.delete_many(self._sessions.part_keys(session.id))  # failed: the upload stays
        self._sessions.close(session.id)

    def parts(
        self, credential: Credential | None, ref: ProjectRef, path: str, upload_id: str
    ) -> tuple[UploadSession, list[UploadedPart]]:
        """The upload and its parts by number (ListParts)."""
        _, _, session = self._open(credential, ref, path, upload_id)
        return session, self._sessions.parts(session.id)

    def uploads(
        self, credential: Credential | None, ref: ProjectRef, prefix: str, *, limit: int
    ) -> list[UploadSession]:
        """Open uploads whose path starts with prefix, by path then age (ListMultipartUploads)."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        return self._sessions.listed(grant.project.id, prefix, datetime.now(UTC), limit)

    def _open(
        self, credential: Credential | None, ref: ProjectRef, path: str, upload_id: str
    ) -> tuple[Grant, ObjectPath, UploadSession]:
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        session = self._sessions.get(grant.project.id, upload_id, datetime.now(UTC))
        if session is None or session.path != obj_path.value:
            raise no_such_upload(upload_id)
        return grant, obj_path, session

    def _drop(self, session_id: str) -> None:
        """Delete the parts' blobs, then the upload's rows (a crash between leaves rows the stale upload
        job drops, blobs with them)."""
        self._delete(self._sessions.part_keys(session_id))
        self._sessions.close(session_id)

    def _delete(self, keys: list[str]) -> None:
        if keys:
            with contextlib.suppress(RegistryError):  # else the stale upload job deletes them
                self._storage.delete_many(keys)
