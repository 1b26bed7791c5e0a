"""The write side: streamed uploads and direct upload sessions (start, complete, abort), admitted against
the file-size limit, the project's quota and the write's conditions, then checked and committed into the
index, the version a write replaces going to the trash."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from app.auth import Authorizer
from app.db.index import ObjectIndex
from app.db.project_write import ProjectWrite
from app.db.upload_sessions import UploadSessions
from app.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    FileTooLarge,
    NotFound,
    RegistryError,
    UploadNotFinished,
)
from app.manifests import MAX_MANIFEST_BYTES, ManifestCopy, listed_md5s
from app.model.conditions import UNCONDITIONAL, WriteCondition
from app.model.identity import Action, Credential, Grant
from app.model.objects import ObjectInfo
from app.model.paths import ContentAddress, ObjectPath, object_key, storage_key_for
from app.model.projects import ProjectRecord, ProjectRef
from app.model.sizes import human_size
from app.model.upload_sessions import UPLOADS_PREFIX, UploadSession
from app.storage.base import DirectUpload, StagedObject, StorageBackend


@dataclass(frozen=True)
class Upload:
    """The outcome of an upload: the indexed object and whether it is new (201) or already there (200)."""

    info: ObjectInfo
    created: bool


@dataclass(frozen=True)
class Admission:
    """An upload let in: the project as it stood, the size it may free (the object it replaces, when
    identical or not kept; 0: none), and the room other direct uploads hold; with a quota in force, all
    three count against it."""

    project: ProjectRecord
    limited: bool  # a quota is in force
    replaced: int = 0
    reserved: int = 0
    session: str | None = None  # the direct upload being completed: its own room is not counted

    def admits(self, size: int, default_quota: int) -> bool:
        """Whether `size` bytes more fit (the replaced object's freed, others' reservations held)."""
        return self.project.admits(size - self.replaced + self.reserved, default_quota)


class Uploads:
    """Writes objects of GitLab projects for callers GitLab lets write."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        index: ObjectIndex,
        storage: StorageBackend,
        sessions: UploadSessions,
        default_quota: int = 0,
        max_file_size: int = 5 * 2**40,
        session_ttl: int = 24 * 3600,
        trash_retention: int = 0,
    ) -> None:
        self._authorizer = authorizer
        self._index = index
        self._storage = storage
        self._sessions = sessions
        self._default_quota = default_quota
        self._max_file_size = max_file_size
        self._session_ttl = session_ttl
        self._keep_replaced = trash_retention > 0  # a replaced version goes to the trash, else is gone

    def upload(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        body: Iterable[bytes],
        *,
        overwrite: bool = True,
        condition: WriteCondition = UNCONDITIONAL,
        declared_size: int | None = None,
    ) -> Upload:
        """Stream a body into storage. It becomes visible only when complete; a content-addressed object
        only when its md5 matches its path; a `.dir` manifest only when every file it lists is here. It
        replaces a different object at its path (overwrite=False: 409 instead) when the condition holds,
        checked before the body is read and again as it commits (412 otherwise)."""
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        if condition.applies:  # before a byte is read: a doomed upload costs no transfer
            condition.check(obj_path.value, self._index.get(grant.project.id, obj_path.value))
        address = obj_path.content_address
        admission = self._admit(grant, obj_path, declared_size)
        body = self._limited(body, admission)
        manifest = ManifestCopy(body) if address is not None and address.is_dir else None
        staged = self._storage.stage(storage_key_for(grant.project.id, obj_path), manifest or body)
        try:
            kept = manifest.kept() if manifest else None
            return self._store(grant, obj_path, staged, admission, overwrite, kept, condition)
        finally:
            self._storage.discard(staged)

    def _admit(
        self, grant: Grant, obj_path: ObjectPath, size: int | None, *, session: str | None = None
    ) -> Admission:
        """Refuse an upload of `size` bytes (None: unknown yet, then at least one byte must fit) over the
        file-size limit or the project's quota (less the room open direct uploads hold)."""
        if size is not None and size > self._max_file_size:
            raise self._too_large()
        project = self._index.record_of(grant.project)
        project.require_active()
        if not project.effective_quota(self._default_quota):
            return Admission(project=project, limited=False)
        # optimistic until the body's md5 is known (an identical re-upload must never be refused), the lock
        # decides: the object at the path, and a content address's bytes in the trash, which come back
        previous, trashed = self._index.lookup(grant.project.id, obj_path.value)
        in_trash = trashed if obj_path.content_address else 0
        admission = Admission(
            project=project,
            limited=True,
            replaced=(previous.size if previous else 0) + (in_trash or 0),
            reserved=self._sessions.reserved(project.id, datetime.now(UTC), besides=session),
            session=session,
        )
        if not admission.admits(1 if size is None else size, self._default_quota):
            raise project.over_quota(self._default_quota)
        return admission

    def _limited(self, body: Iterable[bytes], admission: Admission) -> Iterator[bytes]:
        """The body, cut off with 413 the moment it passes the file-size limit or the project's quota."""
        size = 0
        for chunk in body:
            size += len(chunk)
            if size > self._max_file_size:
                raise self._too_large()
            if admission.limited and not admission.admits(size, self._default_quota):
                raise admission.project.over_quota(self._default_quota)
            yield chunk

    admit = _admit  # what app.door_uploads checks a multipart upload's parts with

    def _too_large(self) -> FileTooLarge:
        return FileTooLarge(f"File too large: the limit is {human_size(self._max_file_size)}")

    def _store(
        self,
        grant: Grant,
        obj_path: ObjectPath,
        staged: StagedObject,
        admission: Admission,
        overwrite: bool,
        manifest: bytes | None,
        condition: WriteCondition = UNCONDITIONAL,
    ) -> Upload:
        """Check a staged object (md5 of a content address, files a `.dir` lists, the condition, quota,
        conflicts), then make it visible and index it, the version it replaces going to the trash; the
        caller discards the staged object whatever happens."""
        project = grant.project
        address = obj_path.content_address
        if address is not None and staged.md5 != address.md5:
            raise ChecksumMismatch(f"Checksum mismatch: body md5 {staged.md5} does not match path {obj_path}")
        if address is not None and manifest is not None:
            self._refuse_missing_children(project.id, address, manifest)
        # Content-addressed objects are immutable: concurrent uploads store identical bytes, so without a
        # quota the bucket write (a network round trip on S3 and GCS) needs no lock, only the index write.
        # With a quota it goes under the lock too: a refusal there must leave no bytes behind; and so it
        # does when the object is in the trash, whose purge deletes that key under the lock.
        unlocked = address is not None and not admission.limited
        if unlocked:
            existing, in_trash = self._index.lookup(project.id, obj_path.value)  # one query for both
            condition.check(obj_path.value, existing)
            if existing is not None and existing.md5 == staged.md5:
                return Upload(info=existing, created=False)
            unlocked = in_trash is None
        if unlocked:
            self._storage.commit(staged)
        # A content address lives at its own key (only its own bytes can be there); any other path's
        # version at a key of its own, so the bytes the index points to never change under it (DESIGN 2).
        own_key = object_key(project.id, obj_path)
        committed, indexed, released = unlocked, False, []
        try:
            with self._index.writing(project) as tx:
                existing = tx.get(obj_path.value)
                condition.check(obj_path.value, existing)  # racing writers: the lock decides
                if existing is not None and existing.md5 == staged.md5:
                    return Upload(info=existing, created=False)
                if existing is not None and address is None and not overwrite:
                    raise Conflict(f"A different object exists at {obj_path}; set overwrite to replace it")
                if admission.limited:  # concurrent uploads passed admission together: the lock decides
                    now = Admission(
                        tx.project,
                        True,
                        self._freed(tx, obj_path, staged),
                        tx.reserved(besides=admission.session),
                    )
                    if not now.admits(staged.size, self._default_quota):
                        raise tx.project.over_quota(self._default_quota)
                if not unlocked:
                    self._storage.commit(staged)  # under the project's lock: one writer wins, whole
                    committed = True
                uploader = grant.actor.user_id if grant.actor else None
                info = tx.put(
                    obj_path.value,
                    size=staged.size,
                    md5=staged.md5,
                    uploader_id=uploader,
                    storage_key=None if staged.key == own_key else staged.key,
                    keep_replaced=self._keep_replaced,
                )
                released = tx.released
                indexed = True  # from here only the COMMIT can fail, and it may have gone through
        except BaseException:
            # a version nothing points to (the index kept the old one); when the commit itself failed the
            # row may exist after all: the usage sweep removes the version later if nothing points to it
            if committed and not indexed and staged.key != own_key:
                with contextlib.suppress(RegistryError):
                    self._storage.delete(staged.key)
            raise
        if released:  # replaced, and not kept in the trash: after the index switched, nothing points to them
            with contextlib.suppress(RegistryError):  # else the usage sweep removes them later
                self._storage.delete_many(released)
        return Upload(info=info, created=existing is None)

    def place(
        self, grant: Grant, at: ObjectPath, staged: StagedObject, cond: WriteCondition, manifest: bytes | None
    ) -> Upload:
        """Commit an object staged otherwise (app.moves: a bucket copy) as an upload's, on a grant."""
        return self._store(grant, at, staged, self._admit(grant, at, staged.size), True, manifest, cond)

    def _freed(self, tx: ProjectWrite, obj_path: ObjectPath, staged: StagedObject) -> int:
        """What a write of staged frees: versions at its own key (a content address's bytes in the trash
        come back live), and the live version it replaces when that is not kept in the trash."""
        versions = tx.versions(obj_path.value)
        freed = sum(info.size for info in versions if info.key == staged.key)
        live = versions[0] if versions and versions[0].trashed_at is None else None
        if live is not None and live.key != staged.key and not self._keep_replaced:
            freed += live.size
        return freed

    def _refuse_missing_children(self, project_id: int, address: ContentAddress, manifest: bytes) -> None:
        children = sorted(address.sibling(md5) for md5 in listed_md5s(manifest))
        missing = self._index.missing(project_id, children)
        if missing:
            raise Conflict(
                f"{len(missing)} of {len(children)} files listed in this .dir are not uploaded"
                f" (first: {missing[0]}); push them first"
            )

    def start(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        *,
        path: str,
        size: int,
        md5: str | None,
        overwrite: bool,
    ) -> tuple[UploadSession, DirectUpload]:
        """Open a direct upload of `size` bytes: the client sends them straight to storage with the
        returned signed URLs, then calls complete. Limits and conflicts are checked up front."""
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        address = obj_path.content_address
        if address is not None and md5 is not None and md5 != address.md5:
            raise ChecksumMismatch(f"Checksum mismatch: md5 {md5} does not match path {obj_path}")
        self._admit(grant, obj_path, size)
        existing = self._index.get(grant.project.id, obj_path.value)
        if existing is not None and address is None and not overwrite and existing.md5 != md5:
            raise Conflict(f"A different object exists at {obj_path}; set overwrite to replace it")
        now = datetime.now(UTC)
        session = UploadSession(
            id=secrets.token_hex(16),
            project_id=grant.project.id,
            path=obj_path.value,
            size=size,
            md5=md5 or (address.md5 if address else None),
            overwrite=overwrite,
            handle="",
            uploader_id=grant.actor.user_id if grant.actor else None,
            created_at=now,
            expires_at=now + timedelta(seconds=self._session_ttl),
        )
        direct = self._storage.begin_direct(session.temp_key, size=size, ttl=self._session_ttl)
        session = replace(session, handle=direct.handle)
        try:
            self._sessions.open(session)
        except BaseException:
            self._storage.abort_direct(session.temp_key, direct.handle)
            raise
        return session, direct

    def _session(self, grant: Grant, session_id: str) -> UploadSession:
        session = self._sessions.get(grant.project.id, session_id)
        if session is None or session.expires_at < datetime.now(UTC):
            raise NotFound(f"Upload session not found (or expired): {session_id}")
        return session

    def complete(self, credential: Credential | None, ref: ProjectRef, session_id: str) -> Upload:
        """Check what a direct upload stored (size, md5, the path's rules) and index it, or reject it and
        keep nothing. While bytes are still missing the session stays open (409 upload_not_finished)."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        session = self._session(grant, session_id)
        if not self._sessions.claim(session.id):
            raise Conflict("This upload is being completed by another request")
        obj_path = ObjectPath(session.path)
        try:
            staged = self._storage.finish_direct(
                session.temp_key,
                session.handle,
                size=session.size,
                key=storage_key_for(grant.project.id, obj_path),
            )
        except BaseException:
            self._sessions.release(session.id)
            raise
        if staged is None:
            self._sessions.release(session.id)
            raise UploadNotFinished(f"Upload not finished: fewer than {session.size} bytes have arrived")
        try:
            if staged.size != session.size:
                raise BadRequest(f"Size mismatch: {staged.size} bytes arrived, {session.size} were declared")
            if session.md5 is not None and staged.md5 != session.md5:
                raise ChecksumMismatch(f"Checksum mismatch: upload md5 {staged.md5}, declared {session.md5}")
            admission = self._admit(grant, obj_path, staged.size, session=session.id)
            manifest = None
            address = obj_path.content_address
            if address is not None and address.is_dir and staged.size <= MAX_MANIFEST_BYTES:
                manifest = b"".join(self._storage.read_staged(staged))
            return self._store(grant, obj_path, staged, admission, session.overwrite, manifest)
        finally:
            self._storage.discard(staged)
            self._sessions.close(session.id)

    def require_open(self, temp_key: str) -> None:
        """NotFound unless the direct upload writing to temp_key still takes bytes (not completing,
        completed, aborted or expired): what a closed S3 multipart upload answers its part URLs."""
        session_id = temp_key.removeprefix(UPLOADS_PREFIX)
        if not self._sessions.is_open(session_id, datetime.now(UTC)):
            raise NotFound("This upload session is closed (completed, aborted or expired)")

    def abort(self, credential: Credential | None, ref: ProjectRef, session_id: str) -> None:
        """Drop a direct upload and whatever it stored."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        session = self._session(grant, session_id)
        self._storage.abort_direct(session.temp_key, session.handle)
        self._sessions.close(session.id)
