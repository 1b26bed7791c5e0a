"""A project's trash: what DELETE (an object, a collection, `dvc gc -c`) took and every version a PUT
replaced, listed and restored for REGISTRY_TRASH_RETENTION, then purged by the worker. A `.dir` manifest
comes back with the files it lists that are in the trash too, or not at all while one of them is gone."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from app.auth import Authorizer
from app.db.index import ObjectIndex
from app.db.project_write import ProjectWrite
from app.errors import AuthenticationRequired, Conflict, NotFound, ObjectNotFound, PermissionDenied
from app.manifests import MAX_MANIFEST_BYTES, InvalidManifest, listed_md5s
from app.model.identity import Action, Credential
from app.model.objects import Listing, ObjectInfo
from app.model.paths import ObjectPath
from app.model.projects import Project, ProjectRef
from app.storage.base import StorageBackend

_NOW = timedelta(seconds=1)  # an early purge takes what was trashed up to this instant


@dataclass(frozen=True)
class PurgeReport:
    projects: int = 0
    objects: int = 0
    bytes: int = 0


class Trash:
    """Lists and restores trashed objects for callers GitLab lets delete (listing: read)."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        index: ObjectIndex,
        storage: StorageBackend,
        retention: int,
        default_quota: int = 0,
    ) -> None:
        self._authorizer = authorizer
        self._index = index
        self._storage = storage
        self.retention = retention  # seconds
        self._default_quota = default_quota

    def purge_at(self, info: ObjectInfo) -> datetime | None:
        """When a trashed object goes for good."""
        return None if info.trashed_at is None else info.trashed_at + timedelta(seconds=self.retention)

    def page(self, credential: Credential | None, ref: ProjectRef, listing: Listing) -> list[ObjectInfo]:
        """A page of the project's trash."""
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        return self._index.page(project.id, replace(listing, trashed=True))

    def may_restore(self, credential: Credential | None, ref: ProjectRef) -> bool:
        """Whether the caller may restore (and delete): what the UI offers is what would be allowed."""
        try:
            self._authorizer.authorize(credential, ref, Action.DELETE)
        except (AuthenticationRequired, PermissionDenied, NotFound):
            return False
        return True

    def restore(self, credential: Credential | None, ref: ProjectRef, paths: list[str]) -> list[ObjectInfo]:
        """Bring objects back (Maintainer): as `restore_paths`."""
        project = self._authorizer.authorize(credential, ref, Action.DELETE).project
        return self.restore_paths(project, paths)

    def restore_paths(self, project: Project, paths: list[str]) -> list[ObjectInfo]:
        """Bring the objects at paths back from the trash (the newest version at each; the live version
        there, one a PUT made since, takes its place in the trash: nothing is lost, and a second restore
        swaps them back), each `.dir` with the trashed files it lists;
        409 when one of its files is gone for good, 404 when a path is not in the trash, 413 when they do not
        fit in the project's quota with the room open direct uploads hold (a restore is a write; the trash
        counts toward the quota already, so this refuses only when the quota was lowered meanwhile). All
        or nothing."""
        wanted = [ObjectPath(path).value for path in paths]
        with self._index.writing(project) as tx:
            restored: list[ObjectInfo] = []
            done: set[str] = set()
            for path in dict.fromkeys(wanted):  # each once: a second restore would swap back
                if path in done:
                    continue  # restored already, by its .dir
                info = tx.restore(path)
                if info is None:
                    if tx.get(path) is not None:
                        continue  # restored already (by an earlier request)
                    raise ObjectNotFound(f"Not in the trash: {path}")
                listed = self._restore_listed(tx, project.id, info)
                restored += [info, *listed]
                done.update(child.path for child in listed)
            back = sum(info.size for info in restored)
            # tx.restore moved them from the trash's totals to the live ones: `before` holds neither
            before = replace(tx.project, used_bytes=tx.project.used_bytes - back)
            if restored and not before.admits(back + tx.reserved(), self._default_quota):
                raise tx.project.over_quota(self._default_quota)
        return restored

    def purge(self, credential: Credential | None, ref: ProjectRef) -> PurgeReport:
        """Empty the project's trash now (Maintainer): its objects are gone for good, their room free."""
        project = self._authorizer.authorize(credential, ref, Action.DELETE).project
        self._index.require_active(project)
        return purge_trash(self._index, self._storage, [project], retention=0, now=datetime.now(UTC) + _NOW)

    def _restore_listed(self, tx: ProjectWrite, project_id: int, info: ObjectInfo) -> list[ObjectInfo]:
        """The trashed files a restored `.dir` lists, restored; Conflict when one is gone."""
        address = ObjectPath(info.path).content_address
        if address is None or not address.is_dir or info.size > MAX_MANIFEST_BYTES:
            return []
        try:
            manifest = b"".join(self._storage.read(info.key))
            children = sorted(address.sibling(md5) for md5 in listed_md5s(manifest))
        except (InvalidManifest, ObjectNotFound):
            return []
        restored = []
        for child in children:
            if tx.get(child) is not None:
                continue
            back = tx.restore(child)
            if back is None:
                raise Conflict(f"{child}, listed in {info.path}, is gone for good; push it again first")
            restored.append(back)
        return restored


def purge_trash(
    index: ObjectIndex,
    storage: StorageBackend,
    projects: list[Project],
    *,
    retention: int,
    now: datetime | None = None,
    batch: int = 1000,
) -> PurgeReport:
    """Delete objects trashed more than `retention` seconds ago: rows and blobs together under each
    project's lock, a batch at a time."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=retention)
    purged_projects = objects = size = 0
    for project in projects:
        project_purged = 0
        while paths := index.expired_trash(project.id, cutoff, batch):
            with index.writing(project) as tx:  # restored or replaced meanwhile: not purged
                gone = tx.remove_many(paths, trashed=True, before=cutoff)
                storage.delete_many([info.key for info in gone.values()])
            project_purged += len(gone)
            size += sum(info.size for info in gone.values())
            if not gone:
                break
        objects += project_purged
        purged_projects += bool(project_purged)
    return PurgeReport(projects=purged_projects, objects=objects, bytes=size)
