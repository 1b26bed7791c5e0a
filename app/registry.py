"""The data-plane use cases (stat, download, upload, delete): authorisation, index and storage together."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.auth import Authorizer
from app.cache import TTLCache
from app.db.index import ObjectIndex
from app.db.uploads import UploadSessions
from app.errors import (
    AuthenticationRequired,
    BadRequest,
    ChecksumMismatch,
    Conflict,
    FileTooLarge,
    NotFound,
    ObjectNotFound,
    PermissionDenied,
    ProjectNotFound,
    QuotaExceeded,
    UploadNotFinished,
)
from app.manifests import MAX_MANIFEST_BYTES, InvalidManifest, listed_md5s
from app.model import (
    Action,
    ContentAddress,
    Credential,
    Grant,
    ObjectInfo,
    ObjectPath,
    ProjectRef,
    SignedURL,
    UploadSession,
    attachment,
    human_size,
    object_key,
)
from app.storage.base import DirectUpload, StagedObject, StorageBackend


@dataclass(frozen=True)
class Download:
    """An object the caller may read, with a signed URL to fetch it from storage."""

    info: ObjectInfo
    url: SignedURL


@dataclass(frozen=True)
class Browse:
    """What a WebDAV client finds at a path: an object, or a (virtual) collection and its children."""

    info: ObjectInfo | None  # the object, None for a collection
    children: Iterator[tuple[str, ObjectInfo | None]]  # (name, object or None for a sub-collection)


@dataclass(frozen=True)
class ProjectStats:
    """A project's registry at a glance."""

    id: int
    path: str
    used_bytes: int
    object_count: int
    quota_bytes: int  # 0: unlimited
    last_upload: datetime | None


@dataclass(frozen=True)
class ProjectUsage:
    """A project's storage as admins see it: usage, the quota in force and whether it is the default."""

    id: int
    path: str | None  # None: the index has never seen the project
    used_bytes: int
    object_count: int
    quota_bytes: int  # 0: unlimited
    quota_is_default: bool


@dataclass(frozen=True)
class Upload:
    """The outcome of an upload: the indexed object and whether it is new (201) or already there (200)."""

    info: ObjectInfo
    created: bool


class Registry:
    """Reads and writes objects of GitLab projects for callers GitLab vouches for."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        index: ObjectIndex,
        storage: StorageBackend,
        signed_url_ttl: int,
        uploads: UploadSessions,
        default_quota: int = 0,
        max_file_size: int = 5 * 2**40,
        upload_session_ttl: int = 24 * 3600,
    ) -> None:
        self._authorizer = authorizer
        self._index = index
        self._storage = storage
        self._ttl = signed_url_ttl
        self._default_quota = default_quota
        self._max_file_size = max_file_size
        self._uploads = uploads
        self._upload_ttl = upload_session_ttl
        # A signed URL is reused for half its life: DVC's existence check and download of one object then
        # cost one signature (S3 144 µs, GCS 241 µs: more than the rest of the request).
        self._signed: TTLCache[SignedURL] = TTLCache(max_size=50_000)

    def _lookup(self, grant: Grant, path: ObjectPath) -> ObjectInfo:
        info = self._index.get(grant.project.id, path.value)  # ProjectDeleted for a deleted project
        if info is None:
            raise ObjectNotFound(f"Object not found: {path}")
        return info

    def _readable(self, credential: Credential | None, ref: ProjectRef, path: str) -> tuple[ObjectInfo, str]:
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.READ)
        return self._lookup(grant, obj_path), object_key(grant.project.id, obj_path)

    def stat(self, credential: Credential | None, ref: ProjectRef, path: str) -> ObjectInfo:
        """The indexed object, or ObjectNotFound."""
        return self._readable(credential, ref, path)[0]

    def download(
        self, credential: Credential | None, ref: ProjectRef, path: str, *, as_attachment: bool = False
    ) -> Download:
        """The object and a signed URL valid for the configured TTL (as_attachment: the bucket answers
        with a Content-Disposition that saves it under its own name, for browsers)."""
        info, key = self._readable(credential, ref, path)
        disposition = attachment(info.path) if as_attachment else None
        url = self._signed.load(
            (key, info.md5, as_attachment),
            lambda: (self._storage.sign_download(key, ttl=self._ttl, disposition=disposition), self._ttl / 2),
        )
        return Download(info=info, url=url)

    def open(
        self, credential: Credential | None, ref: ProjectRef, path: str
    ) -> tuple[ObjectInfo, Callable[[int, int], Iterator[bytes]]]:
        """The object and a reader of its bytes [start, stop), streamed from storage through the app."""
        info, key = self._readable(credential, ref, path)
        return info, lambda start, stop: self._storage.read(key, start=start, end=stop)

    def upload(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        body: Iterable[bytes],
        *,
        overwrite: bool = False,
        declared_size: int | None = None,
    ) -> Upload:
        """Stream a body into storage. It becomes visible only when complete; a content-addressed object
        only when its md5 matches its path; a `.dir` manifest only when every file it lists is here."""
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        project = grant.project
        address = obj_path.content_address
        used, baseline, quota = self._admit(grant, obj_path, declared_size)
        body = self._limited(body, project.path, used, baseline, quota)
        manifest = _Tee(body) if address is not None and address.is_dir else None
        staged = self._storage.stage(object_key(project.id, obj_path), manifest or body)
        try:
            kept = bytes(manifest.buffer) if manifest is not None and manifest.complete else None
            return self._store(grant, obj_path, staged, overwrite, kept)
        finally:
            self._storage.discard(staged)

    def _admit(self, grant: Grant, obj_path: ObjectPath, size: int | None) -> tuple[int, int, int]:
        """Refuse an upload of `size` bytes (None: unknown yet) over the file-size limit or the project's
        quota; returns (bytes used, bytes used besides this path, quota) for checks while streaming."""
        if size is not None and size > self._max_file_size:
            raise FileTooLarge(f"File too large: the limit is {human_size(self._max_file_size)}")
        used, own_quota = self._index.project_quota(grant.project.id)
        quota = self._default_quota if own_quota is None else own_quota
        baseline = used  # what the project holds besides this object (replacing an object frees its size)
        if quota:
            previous = self._index.get(grant.project.id, obj_path.value)
            baseline -= previous.size if previous else 0
            if baseline + size > quota if size is not None else baseline >= quota:
                raise self._over_quota(grant.project.path, used, quota)
        return used, baseline, quota

    def _store(
        self,
        grant: Grant,
        obj_path: ObjectPath,
        staged: StagedObject,
        overwrite: bool,
        manifest: bytes | None,
    ) -> Upload:
        """Check a staged object (md5 of a content address, files a `.dir` lists, quota, conflicts), then
        make it visible and index it; the caller discards the staged object whatever happens."""
        project = grant.project
        address = obj_path.content_address
        if address is not None and staged.md5 != address.md5:
            raise ChecksumMismatch(f"Checksum mismatch: body md5 {staged.md5} does not match path {obj_path}")
        if address is not None and manifest is not None:
            self._refuse_missing_children(project.id, address, manifest)
        if address is not None:
            # Content-addressed objects are immutable: concurrent uploads store identical bytes, so the
            # bucket write (a network round trip on S3 and GCS) needs no lock. Only the index write does.
            existing = self._index.get(project.id, obj_path.value)
            if existing is not None and existing.md5 == staged.md5:
                return Upload(info=existing, created=False)
            self._storage.commit(staged)
        with self._index.writing(project) as tx:
            existing = tx.get(obj_path.value)
            if existing is not None and existing.md5 == staged.md5:
                return Upload(info=existing, created=False)
            quota = self._default_quota if tx.quota_bytes is None else tx.quota_bytes
            growth = staged.size - (existing.size if existing else 0)
            if quota and growth > 0 and tx.used_bytes + growth > quota:
                # Concurrent uploads passed the first check together; the index lock decides. (A
                # content-addressed object already in the bucket stays there unindexed: invisible.)
                raise self._over_quota(project.path, tx.used_bytes, quota)
            if existing is not None and address is None and not overwrite:
                raise Conflict(f"A different object exists at {obj_path}; add ?overwrite=true to replace it")
            if address is None:
                self._storage.commit(staged)  # under the project's lock: one writer wins, whole
            uploader = grant.actor.user_id if grant.actor else None
            info = tx.put(obj_path.value, size=staged.size, md5=staged.md5, uploader_id=uploader)
        return Upload(info=info, created=existing is None)

    def start_upload(
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
        returned signed URLs, then calls complete_upload. Limits and conflicts are checked up front."""
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
            expires_at=now + timedelta(seconds=self._upload_ttl),
        )
        direct = self._storage.begin_direct(session.temp_key, size=size, ttl=self._upload_ttl)
        session = replace(session, handle=direct.handle)
        try:
            self._uploads.open(session)
        except BaseException:
            self._storage.abort_direct(session.temp_key, direct.handle)
            raise
        return session, direct

    def _session(self, grant: Grant, session_id: str) -> UploadSession:
        session = self._uploads.get(grant.project.id, session_id)
        if session is None or session.expires_at < datetime.now(UTC):
            raise NotFound(f"Upload session not found (or expired): {session_id}")
        return session

    def complete_upload(self, credential: Credential | None, ref: ProjectRef, session_id: str) -> Upload:
        """Check what a direct upload stored (size, md5, the path's rules) and index it, or reject it and
        keep nothing. While bytes are still missing the session stays open (409 upload_not_finished)."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        session = self._session(grant, session_id)
        if not self._uploads.claim(session.id):
            raise Conflict("This upload is being completed by another request")
        obj_path = ObjectPath(session.path)
        try:
            staged = self._storage.finish_direct(
                session.temp_key,
                session.handle,
                size=session.size,
                key=object_key(grant.project.id, obj_path),
            )
        except BaseException:
            self._uploads.release(session.id)
            raise
        if staged is None:
            self._uploads.release(session.id)
            raise UploadNotFinished(f"Upload not finished: fewer than {session.size} bytes have arrived")
        try:
            if staged.size != session.size:
                raise BadRequest(f"Size mismatch: {staged.size} bytes arrived, {session.size} were declared")
            if session.md5 is not None and staged.md5 != session.md5:
                raise ChecksumMismatch(f"Checksum mismatch: upload md5 {staged.md5}, declared {session.md5}")
            self._admit(grant, obj_path, staged.size)
            manifest = None
            address = obj_path.content_address
            if address is not None and address.is_dir and staged.size <= MAX_MANIFEST_BYTES:
                manifest = b"".join(self._storage.read(session.temp_key))
            return self._store(grant, obj_path, staged, session.overwrite, manifest)
        finally:
            self._storage.discard(staged)
            self._uploads.close(session.id)

    def abort_upload(self, credential: Credential | None, ref: ProjectRef, session_id: str) -> None:
        """Drop a direct upload and whatever it stored."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        session = self._session(grant, session_id)
        self._storage.abort_direct(session.temp_key, session.handle)
        self._uploads.close(session.id)

    @staticmethod
    def _over_quota(project_path: str, used: int, quota: int) -> QuotaExceeded:
        return QuotaExceeded(
            f"Quota exceeded for {project_path}: {human_size(used)} of {human_size(quota)} used"
        )

    def _limited(
        self, body: Iterable[bytes], project_path: str, used: int, baseline: int, quota: int
    ) -> Iterator[bytes]:
        """The body, cut off with 413 the moment it passes the file-size limit or the project's quota."""
        size = 0
        for chunk in body:
            size += len(chunk)
            if size > self._max_file_size:
                raise FileTooLarge(f"File too large: the limit is {human_size(self._max_file_size)}")
            if quota and baseline + size > quota:
                raise self._over_quota(project_path, used, quota)
            yield chunk

    def _refuse_missing_children(self, project_id: int, address: ContentAddress, manifest: bytes) -> None:
        children = sorted(address.sibling(md5) for md5 in listed_md5s(manifest))
        missing = self._index.missing(project_id, children)
        if missing:
            raise Conflict(
                f"{len(missing)} of {len(children)} files listed in this .dir are not uploaded"
                f" (first: {missing[0]}); push them first"
            )

    def delete(self, credential: Credential | None, ref: ProjectRef, path: str) -> None:
        """Delete an object, or everything under a collection path (Maintainer); refuse while a `.dir`
        manifest that stays still lists a file that would go."""
        obj_path = ObjectPath(path) if path else None
        grant = self._authorizer.authorize(credential, ref, Action.DELETE)
        if obj_path is None or self._index.get(grant.project.id, obj_path.value) is None:
            self.delete_collection(credential, ref, path)
            return
        address = obj_path.content_address
        if address is not None and not address.is_dir:
            self._refuse_if_listed(grant, address, obj_path)
        with self._index.writing(grant.project) as tx:  # the blob goes under the lock: the usage sweep
            tx.remove(obj_path.value)  # never sees a blob whose row is already gone
            self._storage.delete(object_key(grant.project.id, obj_path))

    def stats(self, credential: Credential | None, ref: ProjectRef) -> ProjectStats:
        """Usage, quota, object count and last upload of a project the caller may read."""
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        used, count = self._index.project_usage(project.id)
        own = self._index.project_quota(project.id)[1]
        return ProjectStats(
            id=project.id,
            path=project.path,
            used_bytes=used,
            object_count=count,
            quota_bytes=self._default_quota if own is None else own,
            last_upload=self._index.last_upload(project.id),
        )

    def usage(self, credential: Credential | None, *, limit: int) -> list[ProjectUsage]:
        """Admins: the projects using the most storage."""
        self._authorizer.authorize_admin(credential, Action.READ)
        return [
            self._usage(project_id, (path, used, count, own))
            for project_id, path, used, count, own in self._index.usage_table(limit)
        ]

    def quota(self, credential: Credential | None, project_id: int) -> ProjectUsage:
        """Admins: a project's usage and quota."""
        self._authorizer.authorize_admin(credential, Action.READ)
        return self._usage(project_id, self._index.project_summary(project_id))

    def set_quota(
        self, credential: Credential | None, project_id: int, quota_bytes: int | None
    ) -> ProjectUsage:
        """Admins: give a project its own quota (0: unlimited), or None to go back to the default."""
        self._authorizer.authorize_admin(credential, Action.WRITE)
        self._index.set_quota(project_id, quota_bytes)
        return self._usage(project_id, self._index.project_summary(project_id))

    def _usage(self, project_id: int, summary: tuple[str, int, int, int | None] | None) -> ProjectUsage:
        path, used, count, own = summary or (None, 0, 0, None)
        return ProjectUsage(
            id=project_id,
            path=path,
            used_bytes=used,
            object_count=count,
            quota_bytes=self._default_quota if own is None else own,
            quota_is_default=own is None,
        )

    def list_objects(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        *,
        prefix: str,
        search: str,
        limit: int,
        order_by: str = "path",
        descending: bool = False,
        after: tuple[Any, str] | None = None,
    ) -> list[ObjectInfo]:
        """A page of the project's objects, ordered by path, size or created_at."""
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        return self._index.page(
            project.id,
            prefix=prefix,
            search=search,
            limit=limit,
            order_by=order_by,
            descending=descending,
            after=after,
        )

    def exists(
        self, credential: Credential | None, ref: ProjectRef, *, paths: list[str], md5s: list[str]
    ) -> tuple[dict[str, bool], dict[str, bool]]:
        """For each path whether it is an object, for each md5 whether an object has it; one query each."""
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        missing = set(self._index.missing(project.id, paths)) if paths else set()
        present = self._index.present_md5s(project.id, md5s) if md5s else set()
        return {p: p not in missing for p in paths}, {m: m in present for m in md5s}

    def browse(self, credential: Credential | None, ref: ProjectRef, path: str) -> Browse:
        """An object, or the collection at path with its children listed from the index. Collections are
        virtual: every path that is not an object, nor a DVC content address, is one (so a remote's base
        URL exists before anything is pushed). A project the caller may not read looks like a missing path."""
        obj_path = ObjectPath(path) if path else None
        try:
            grant = self._authorizer.authorize(credential, ref, Action.READ)
        except (ProjectNotFound, PermissionDenied, AuthenticationRequired):
            raise ObjectNotFound(f"Object not found: {path or '/'}") from None
        self._index.require_active(grant.project)
        if obj_path is not None:
            info = self._index.get(grant.project.id, obj_path.value)
            if info is not None:
                return Browse(info=info, children=iter(()))
            if obj_path.content_address is not None:
                raise ObjectNotFound(f"Object not found: {path}")
        prefix = f"{path}/" if path else ""
        return Browse(info=None, children=self._index.children(grant.project.id, prefix))

    def make_collection(self, path: str) -> None:
        """MKCOL: collections are virtual, so it creates nothing and only the path is checked. Credentials
        and write access are checked on the PUT that follows, where DVC shows the refusal with its reason
        (an MKCOL error aborts the whole push with a bare "unexpected error")."""
        if path:
            ObjectPath(path)

    def delete_collection(self, credential: Credential | None, ref: ProjectRef, path: str) -> int:
        """Delete every object under path (Maintainer); refuse while a `.dir` outside it lists one of them.
        Returns how many objects were deleted."""
        prefix = f"{ObjectPath(path).value}/" if path else ""
        grant = self._authorizer.authorize(credential, ref, Action.DELETE)
        project_id = grant.project.id
        doomed = list(self._index.find(project_id, prefix=prefix))
        if not doomed:
            raise ObjectNotFound(f"Not found: {path or '/'}")
        listed: dict[str, set[str]] = {}  # content-address prefix -> md5s of the files going away
        for info in doomed:
            address = ObjectPath(info.path).content_address
            if address is not None and not address.is_dir:
                listed.setdefault(address.prefix, set()).add(address.md5)
        for address_prefix, md5s in listed.items():
            for manifest in self._index.find(project_id, prefix=address_prefix, suffix=".dir"):
                if manifest.path.startswith(prefix) or manifest.size > MAX_MANIFEST_BYTES:
                    continue  # going away too
                key = object_key(project_id, ObjectPath(manifest.path))
                try:
                    if md5s & listed_md5s(b"".join(self._storage.read(key))):
                        raise Conflict(f"{manifest.path} lists files under {path or '/'}; delete it first")
                except (InvalidManifest, ObjectNotFound):
                    continue
        for start in range(0, len(doomed), 1000):
            batch = doomed[start : start + 1000]
            with self._index.writing(grant.project) as tx:
                for info in batch:
                    tx.remove(info.path)
                self._storage.delete_many([object_key(project_id, ObjectPath(info.path)) for info in batch])
        return len(doomed)

    def _refuse_if_listed(self, grant: Grant, address: ContentAddress, path: ObjectPath) -> None:
        for manifest in self._index.find(grant.project.id, prefix=address.prefix, suffix=".dir"):
            if manifest.size > MAX_MANIFEST_BYTES:
                continue
            key = object_key(grant.project.id, ObjectPath(manifest.path))
            try:
                listed = listed_md5s(b"".join(self._storage.read(key)))
            except (InvalidManifest, ObjectNotFound):
                continue
            if address.md5 in listed:
                raise Conflict(f"{path} is listed in {manifest.path}; delete that .dir first")


class _Tee:
    """Passes a body through while keeping a copy of it, up to MAX_MANIFEST_BYTES."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = body
        self.buffer = bytearray()
        self.complete = True

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            if self.complete and len(self.buffer) + len(chunk) <= MAX_MANIFEST_BYTES:
                self.buffer += chunk
            else:
                self.complete, self.buffer = False, bytearray()
            yield chunk
