"""WebDAV COPY and MOVE inside one project (RFC 4918 9.8, 9.9): each object copied in the bucket (its
bytes never pass through the registry) and committed as an upload is, by the uploads' own commit path
(a new version key, quota, conditions, the replaced version to the trash); a MOVE then deletes its
source, once the destination is committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from app.auth import Authorizer
from app.db.index import ObjectIndex
from app.db.upload_sessions import UploadSessions
from app.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    ObjectNotFound,
    PermissionDenied,
    PreconditionFailed,
    RegistryError,
)
from app.manifests import MAX_MANIFEST_BYTES
from app.model.conditions import UNCONDITIONAL, EntityTags, WriteCondition
from app.model.identity import Action, Credential, Grant
from app.model.objects import ObjectInfo
from app.model.paths import ContentAddress, ObjectPath, storage_key_for
from app.model.projects import ProjectRef
from app.registry import Registry
from app.settings import Settings
from app.storage.base import StagedObject, StorageBackend
from app.uploads import Uploads

_CREATE_ONLY = WriteCondition(if_none_match=EntityTags(any=True))  # Overwrite: F


class DestinationElsewhere(RegistryError):
    """The Destination is another server, project or namespace: 403 (RFC 4918 9.8.5 also allows 502, but
    a 5xx says the registry failed, and nothing failed: the client asked what no WebDAV server does)."""

    status, code = 403, "destination_elsewhere"


@dataclass
class BucketCopy:
    """The handle of a staged object whose bytes are still at `source`: committing it copies them."""

    source: str


class CopyingStorage:
    """The storage as the copies' uploads see it: a BucketCopy is committed by a server-side copy (under
    the project's lock where an upload's commit would be), everything else goes to the store as is."""

    def __init__(self, storage: StorageBackend) -> None:
        self._storage = storage

    def commit(self, staged: StagedObject) -> None:
        if isinstance(staged.handle, BucketCopy):
            self._storage.copy(staged.handle.source, staged.key)
            staged.handle = None
            return
        self._storage.commit(staged)

    def discard(self, staged: StagedObject) -> None:
        if staged.handle is None or isinstance(staged.handle, BucketCopy):
            staged.handle = None
            return
        self._storage.discard(staged)

    def __getattr__(self, name: str) -> object:
        return getattr(self._storage, name)


@dataclass(frozen=True)
class Resource:
    """What is at a path: an object, a collection (info None), or nothing (exists False)."""

    path: str
    info: ObjectInfo | None
    exists: bool

    @property
    def collection(self) -> bool:
        return self.exists and self.info is None


class Moves:
    """COPY and MOVE for callers GitLab lets write (and, for MOVE and for replacing a collection, delete)."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        index: ObjectIndex,
        storage: StorageBackend,
        registry: Registry,
        uploads: Uploads,
        forever: Registry,
        default_quota: int = 0,
    ) -> None:
        """`uploads` must be built on a CopyingStorage; `forever` is a registry without a trash (a MOVE's
        source is not a deletion anyone would undo: its bytes live on at the destination)."""
        self._authorizer = authorizer
        self._index = index
        self._storage = storage
        self._registry = registry
        self._uploads = uploads
        self._forever = forever
        self._default_quota = default_quota

    def copy(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        source: str,
        destination: tuple[ProjectRef, str],
        *,
        overwrite: bool,
        infinite: bool = True,
    ) -> bool:
        """Copy source (with everything under it when infinite) to destination; True when the
        destination is new (201), False when it replaced something (204)."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        return self._copy(credential, grant, source, destination, overwrite=overwrite, infinite=infinite)

    def move(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        source: str,
        destination: tuple[ProjectRef, str],
        *,
        overwrite: bool,
    ) -> bool:
        """Copy, then delete the source for good (only once the destination is committed: a crash leaves
        both, never neither). Needs delete as well as write: checked before anything is copied."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        try:
            self._authorizer.authorize(credential, ref, Action.DELETE)
        except PermissionDenied as e:
            raise PermissionDenied(f"MOVE deletes its source: {e.message}") from None
        created = self._copy(credential, grant, source, destination, overwrite=overwrite, infinite=True)
        self._forever.delete(credential, ref, source)
        return created

    def _copy(
        self,
        credential: Credential | None,
        grant: Grant,
        source: str,
        destination: tuple[ProjectRef, str],
        *,
        overwrite: bool,
        infinite: bool,
    ) -> bool:
        dest_ref, dest = destination
        self._same_project(credential, grant, dest_ref)
        if not source or not dest:
            raise PermissionDenied("The data root cannot be copied, moved or replaced")
        ObjectPath(dest)
        if source == dest:
            raise PermissionDenied("Source and destination are the same resource")
        if dest.startswith(source + "/") or source.startswith(dest + "/"):
            raise PermissionDenied("A collection cannot be copied or moved into itself or over its parent")
        src = self._resource(grant, source)
        if not src.exists:
            raise ObjectNotFound(f"Not found: {source}")
        if src.info is not None:
            _check_address(src.info, dest)
        target = self._resource(grant, dest)
        parent = dest.rpartition("/")[0]
        if parent and not self._resource(grant, parent).collection:
            raise Conflict(f"Parent collection {parent} does not exist; create it first (MKCOL)")
        if target.exists and not overwrite:
            raise PreconditionFailed(f"Precondition failed (Overwrite: F): {dest} exists")
        if target.collection or (target.exists and src.collection):
            # RFC 4918 9.8.4: what is at the destination is deleted first (to the trash)
            self._registry.delete(credential, ProjectRef(id=grant.project.id), dest)
        elif target.exists:  # an object replaced: its dead properties and mtime go with its version
            self._index.dav.remove(grant.project.id, [dest], under_too=False)
        if src.info is not None:
            self._copy_object(grant, src.info, dest, UNCONDITIONAL if overwrite else _CREATE_ONLY)
        else:
            self._copy_collection(grant, source, dest, infinite)
        self._copy_properties(grant, source, dest)
        return not target.exists

    def _same_project(self, credential: Credential | None, grant: Grant, dest_ref: ProjectRef) -> None:
        try:
            other = self._authorizer.authorize(credential, dest_ref, Action.WRITE).project.id
        except (NotFound, PermissionDenied, AuthenticationRequired):
            other = None
        if other != grant.project.id:
            raise DestinationElsewhere(
                "COPY and MOVE work inside one project; copy to another project with GET and PUT"
            )

    def _resource(self, grant: Grant, path: str) -> Resource:
        info = self._index.get(grant.project.id, ObjectPath(path).value)
        if info is not None:
            return Resource(path, info, True)
        collection = self._index.dav.is_collection(grant.project.id, path) or self._index.has_prefix(
            grant.project.id, f"{path}/"
        )
        return Resource(path, None, collection)

    def _copy_object(self, grant: Grant, info: ObjectInfo, dest: str, condition: WriteCondition) -> None:
        """One object through the uploads' commit path; a content address only where its md5 is the
        object's (the bytes are the same, so is the md5)."""
        obj_path = ObjectPath(dest)
        address = _check_address(info, dest)
        manifest = None
        if address is not None and address.is_dir and info.size <= MAX_MANIFEST_BYTES:
            manifest = b"".join(self._storage.read(info.key))
        key = storage_key_for(grant.project.id, obj_path)
        staged = StagedObject(key=key, size=info.size, md5=info.md5, handle=BucketCopy(info.key))
        try:
            self._uploads.place(grant, obj_path, staged, condition, manifest)
        finally:
            staged.handle = None  # a BucketCopy holds nothing to discard

    def _copy_collection(self, grant: Grant, source: str, dest: str, infinite: bool) -> None:
        """The collection itself and, when infinite, every object and empty collection under it."""
        store = self._index.dav
        made = [dest]
        if infinite:
            project_id = grant.project.id
            objects = list(self._index.find(project_id, prefix=f"{source}/"))
            record = self._index.record_of(grant.project)
            if not record.admits(sum(info.size for info in objects), self._default_quota):
                raise record.over_quota(self._default_quota)
            for info in objects:
                self._copy_object(grant, info, dest + info.path[len(source) :], UNCONDITIONAL)
            made += [
                dest + path[len(source) :] for path in self._collections_under(project_id, source, objects)
            ]
        store.make_collections(grant.project, made)

    def _collections_under(self, project_id: int, source: str, objects: list[ObjectInfo]) -> list[str]:
        """Every collection under source: the folders of its objects and those MKCOL made, at any depth
        (one query per folder)."""
        folders = {info.path.rpartition("/")[0] for info in objects}
        for path in list(folders):
            while path != source:
                folders.add(path)
                path = path.rpartition("/")[0]
        pending, found = [source], set[str]()
        while pending:
            folder = pending.pop()
            names = self._index.dav.collections_in(project_id, folder)
            below = {f"{folder}/{name}" for name in names} | {
                f for f in folders if f.rpartition("/")[0] == folder
            }
            new = below - found
            found |= new
            pending += sorted(new)
        return sorted(found)

    def _copy_properties(self, grant: Grant, source: str, dest: str) -> None:
        """Dead properties go with a copy (RFC 4918 9.8.2); locks do not (a new resource is unlocked)."""
        store = self._index.dav
        found = store.properties(grant.project.id, source)
        if found:
            changes = cast(list[tuple[str, str, str | None]], found)
            store.patch(grant.project, dest, changes, limit=2**31)


def build_moves(
    *,
    authorizer: Authorizer,
    index: ObjectIndex,
    storage: StorageBackend,
    sessions: UploadSessions,
    settings: Settings,
) -> Moves:
    """Moves over the app's storage, with the settings the uploads and deletes they reuse need."""
    registries = [
        Registry(
            authorizer=authorizer,
            index=index,
            storage=storage,
            signed_url_ttl=settings.signed_url_ttl,
            default_quota=settings.default_quota,
            trash_retention=retention,
        )
        for retention in (settings.trash_retention, 0)
    ]
    copies = Uploads(
        authorizer=authorizer,
        index=index,
        storage=cast(StorageBackend, CopyingStorage(storage)),
        sessions=sessions,
        default_quota=settings.default_quota,
        max_file_size=settings.max_file_size,
        session_ttl=settings.upload_session_ttl,
        trash_retention=settings.trash_retention,
    )
    return Moves(
        authorizer=authorizer,
        index=index,
        storage=storage,
        registry=registries[0],
        uploads=copies,
        forever=registries[1],
        default_quota=settings.default_quota,
    )


def _check_address(info: ObjectInfo, dest: str) -> ContentAddress | None:
    """A DVC content address takes only the bytes its name says: 409 for another object's."""
    address = ObjectPath(dest).content_address
    if address is not None and address.md5 != info.md5:
        raise Conflict(f"{dest} is the content address of md5 {address.md5}; this object's md5 is {info.md5}")
    return address
