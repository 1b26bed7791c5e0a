"""The read side and deletes: stat, download, browse, list, delete, and the admins' usage and quota views;
authorisation, index and storage together (uploads are app.uploads)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from app.auth import Authorizer
from app.cache import TTLCache
from app.dav import Dav
from app.db.index import ObjectIndex
from app.db.project_write import ProjectWrite
from app.errors import (
    AuthenticationRequired,
    Conflict,
    GitLabUnavailable,
    InvalidCredential,
    NotFound,
    ObjectNotFound,
    PermissionDenied,
    ProjectNotFound,
)
from app.manifests import manifest_listing
from app.model.identity import Action, Actor, Credential, Diagnosis, Grant
from app.model.objects import Listing, ObjectInfo, SignedURL, attachment
from app.model.paths import ObjectPath
from app.model.projects import ACTIVE, Project, ProjectRecord, ProjectRef
from app.storage.base import StorageBackend


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
    trash_bytes: int = 0  # restorable, not counted against the quota
    trash_count: int = 0


@dataclass(frozen=True)
class ProjectUsage:
    """A project's storage as admins see it: usage, the quota in force and whether it is the default."""

    id: int
    path: str | None  # None: the index has never seen the project
    used_bytes: int
    object_count: int
    quota_bytes: int  # 0: unlimited
    quota_is_default: bool
    trash_bytes: int = 0


class Registry:
    """Reads and writes objects of GitLab projects for callers GitLab vouches for."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        index: ObjectIndex,
        storage: StorageBackend,
        signed_url_ttl: int,
        default_quota: int = 0,
        trash_retention: int = 0,
    ) -> None:
        self._authorizer = authorizer
        self._index = index
        self._storage = storage
        self._ttl = signed_url_ttl
        self._default_quota = default_quota
        self._trash_retention = trash_retention  # seconds deleted objects stay restorable; 0: no trash
        self.dav = Dav(authorizer=authorizer, index=index)  # WebDAV collections, properties, mtimes
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
        info = self._lookup(grant, obj_path)
        return info, info.key

    def stat(self, credential: Credential | None, ref: ProjectRef, path: str) -> ObjectInfo:
        """The indexed object, or ObjectNotFound."""
        return self._readable(credential, ref, path)[0]

    def download(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        *,
        as_attachment: bool = False,
        filename: str | None = None,
    ) -> Download:
        """The object and a signed URL valid for the configured TTL (as_attachment: the bucket answers
        with a Content-Disposition that saves it under its own name, or `filename`, for browsers)."""
        info, key = self._readable(credential, ref, path)
        disposition = attachment(filename or info.path) if as_attachment else None
        url, _ = self._signed.load(
            (key, info.md5, disposition),
            lambda: (self._storage.sign_download(key, ttl=self._ttl, disposition=disposition), self._ttl / 2),
        )
        return Download(info=info, url=url)

    def open(
        self, credential: Credential | None, ref: ProjectRef, path: str
    ) -> tuple[ObjectInfo, Callable[[int, int], Iterator[bytes]]]:
        """The object and a reader of its bytes [start, stop), streamed from storage through the app."""
        info, key = self._readable(credential, ref, path)
        return info, lambda start, stop: self._storage.read(key, start=start, end=stop)

    def delete(self, credential: Credential | None, ref: ProjectRef, path: str) -> None:
        """Delete an object, or everything under a collection path (Maintainer); refuse while a `.dir`
        manifest that stays still lists a file that would go."""
        obj_path = ObjectPath(path) if path else None
        try:
            grant = self._authorizer.authorize(credential, ref, Action.DELETE)
        except PermissionDenied:
            if not self._removes_empty_collection(credential, ref, path):
                raise
            return
        if obj_path is None or self._index.get(grant.project.id, obj_path.value) is None:
            self.delete_collection(credential, ref, path)
            return
        address = obj_path.content_address
        if address is not None and not address.is_dir:
            manifest = manifest_listing(
                self._index, self._storage, grant.project.id, prefix=address.prefix, md5s={address.md5}
            )
            if manifest is not None:
                raise Conflict(f"{obj_path} is listed in {manifest}; delete that .dir first")
        with self._index.writing(grant.project) as tx:
            self._discard(tx, grant.project.id, [obj_path.value])
        self._index.dav.remove(grant.project.id, [obj_path.value], under_too=False)

    def _removes_empty_collection(self, credential: Credential | None, ref: ProjectRef, path: str) -> bool:
        """A collection with no object under it is removed by whoever may write (rclone rmdir as a
        Developer): no data goes. False when path is anything else, or the caller may not write."""
        try:
            project_id = self._authorizer.authorize(credential, ref, Action.WRITE).project.id
        except (AuthenticationRequired, PermissionDenied, NotFound):
            return False
        store = self._index.dav
        if not path or not store.is_collection(project_id, ObjectPath(path).value):
            return False
        if self._index.has_prefix(project_id, f"{path}/"):
            return False
        store.remove(project_id, [path], under_too=True)
        return True

    def diagnose(self, credential: Credential | None, ref: ProjectRef) -> Diagnosis:
        """Each action allowed or the reason it is not; an invalid credential is still a 401."""
        grant: Grant | None = None
        refusals: dict[Action, str | None] = {}
        for action in Action:
            try:
                granted = self._authorizer.authorize(credential, ref, action)
            except InvalidCredential:
                raise
            except (AuthenticationRequired, PermissionDenied, NotFound) as e:
                refusals[action] = e.message
                continue
            grant, refusals[action] = grant or granted, None
        if credential is None:
            return Diagnosis(grant=grant, refusals=refusals)
        try:  # who it is, even when the project is mistyped or hidden: the holder may know that
            return Diagnosis(grant, refusals, actor=self._authorizer.identify(credential))
        except PermissionDenied as e:  # GitLab was not asked: the registry cannot check this kind
            return Diagnosis(grant, refusals, actor=Actor(credential.kind, None), unverified=e.message)
        except (InvalidCredential, GitLabUnavailable):
            return Diagnosis(grant=grant, refusals=refusals)

    def stats(self, credential: Credential | None, ref: ProjectRef) -> ProjectStats:
        """Usage, quota, object count and last upload of a project the caller may read."""
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        known = self._index.record_of(project)
        known.require_active()
        return self._stats(project, known)

    def _stats(self, project: Project, known: ProjectRecord) -> ProjectStats:
        return ProjectStats(
            id=project.id,
            path=project.path,
            used_bytes=known.used_bytes,
            object_count=known.object_count,
            quota_bytes=known.effective_quota(self._default_quota),
            last_upload=self._index.last_upload(project.id),
            trash_bytes=known.trash_bytes,
            trash_count=known.trash_count,
        )

    def my_projects(self, credential: Credential) -> list[ProjectStats]:
        """The projects the credential's user is a member of that have data here, most used first."""
        found = []
        for project in self._authorizer.member_projects(credential):
            known = self._index.project(project.id)
            if known is None or known.state != ACTIVE or not (known.object_count or known.trash_count):
                continue
            found.append(self._stats(project, known))
        return sorted(found, key=lambda stats: (-stats.used_bytes, stats.path))

    def usage(self, credential: Credential | None, *, limit: int) -> list[ProjectUsage]:
        """Admins: the projects using the most storage."""
        self._authorizer.authorize_admin(credential, Action.READ)
        return [self._usage(record.id, record) for record in self._index.projects_by_usage(limit)]

    def quota(self, credential: Credential | None, project_id: int) -> ProjectUsage:
        """Admins: a project's usage and quota."""
        self._authorizer.authorize_admin(credential, Action.READ)
        return self._usage(project_id, self._index.project(project_id))

    def set_quota(
        self, credential: Credential | None, project_id: int, quota_bytes: int | None
    ) -> ProjectUsage:
        """Admins: give a project its own quota (0: unlimited), or None to go back to the default."""
        self._authorizer.authorize_admin(credential, Action.WRITE)
        self._index.set_quota(project_id, quota_bytes)
        return self._usage(project_id, self._index.project(project_id))

    def _usage(self, project_id: int, known: ProjectRecord | None) -> ProjectUsage:
        record = known or ProjectRecord(project_id, "")
        return ProjectUsage(
            id=project_id,
            path=known.path if known else None,
            used_bytes=record.used_bytes,
            object_count=record.object_count,
            quota_bytes=record.effective_quota(self._default_quota),
            quota_is_default=record.own_quota is None,
            trash_bytes=record.trash_bytes,
        )

    def list_objects(
        self, credential: Credential | None, ref: ProjectRef, listing: Listing
    ) -> list[ObjectInfo]:
        """A page of the project's objects."""
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        return self._index.page(project.id, listing)

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

    def delete_collection(self, credential: Credential | None, ref: ProjectRef, path: str) -> int:
        """Delete every object under path (Maintainer); refuse while a `.dir` outside it lists one of them.
        Returns how many objects were deleted."""
        prefix = f"{ObjectPath(path).value}/" if path else ""
        grant = self._authorizer.authorize(credential, ref, Action.DELETE)
        project_id = grant.project.id
        doomed = list(self._index.find(project_id, prefix=prefix))
        if not doomed:
            if not path or not self._index.dav.is_collection(project_id, path):
                raise ObjectNotFound(f"Not found: {path or '/'}")
            self._index.dav.remove(project_id, [path], under_too=True)  # with the empty ones below it
            return 0
        listed: dict[str, set[str]] = {}  # content-address prefix -> md5s of the files going away
        for info in doomed:
            address = ObjectPath(info.path).content_address
            if address is not None and not address.is_dir:
                listed.setdefault(address.prefix, set()).add(address.md5)
        for address_prefix, md5s in listed.items():
            manifest = manifest_listing(
                self._index, self._storage, project_id, prefix=address_prefix, md5s=md5s, besides=prefix
            )
            if manifest is not None:
                raise Conflict(f"{manifest} lists files under {path or '/'}; delete it first")
        for start in range(0, len(doomed), 1000):
            with self._index.writing(grant.project) as tx:
                self._discard(tx, project_id, [info.path for info in doomed[start : start + 1000]])
        self._index.dav.remove(project_id, [path.rstrip("/")], under_too=True)
        return len(doomed)

    def _discard(self, tx: ProjectWrite, project_id: int, paths: list[str]) -> None:
        """Deleted objects go to the trash (their bytes stay until purged), or, with no retention, are
        gone: rows and blobs under the lock, so the usage sweep never sees a blob whose row is gone."""
        if self._trash_retention:
            tx.trash_many(paths, datetime.now(UTC))
            return
        gone = tx.remove_many(paths)
        self._storage.delete_many([info.key for info in gone.values()])
