"""The usage sweep: the index reconciled with what the bucket holds (blobs it lacks, rows whose blob is
gone, rows whose bytes changed under them (only objects written before version keys can be), versions
nothing points to), and usage totals recounted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.db.index import ObjectIndex
from app.db.lifecycle import Lifecycle
from app.db.project_write import ProjectWrite
from app.jobs import batched
from app.model.objects import BlobInfo, ObjectInfo
from app.model.paths import VERSIONS_PREFIX
from app.model.projects import Project, Visibility
from app.storage.base import StorageBackend


@dataclass
class SweepReport:
    projects: int = 0
    indexed: int = 0  # blobs found in the bucket without an index row
    dropped: int = 0  # index rows whose blob is gone
    corrected: int = 0  # index rows whose size or md5 were not those of the stored bytes
    orphans: int = 0  # blobs of versions nothing points to (a write cut off, a replaced version left)


ORPHAN_AGE = timedelta(hours=1)  # a younger unreferenced version may be an upload about to be indexed


def sweep_usage(lifecycle: Lifecycle, index: ObjectIndex, storage: StorageBackend) -> SweepReport:
    """List each active project's keys in the bucket: index what the index lacks, drop rows whose blob
    is gone (each confirmed again under the project's lock), delete versions nothing points to, and
    correct the usage totals."""
    report = SweepReport()
    for project_id, path, _ in lifecycle.active_projects():
        project = Project(id=project_id, path=path, visibility=Visibility.PRIVATE)
        prefix = f"projects/{project_id}/"
        blobs = {blob.key[len(prefix) :]: blob for blob in storage.list(prefix)}
        versions = {blob.key: blob for blob in storage.list(f"{VERSIONS_PREFIX}{project_id}/")}
        every = list(index.find(project_id, prefix="", trashed=None))  # a path may have several versions
        rows = {info.path: info for info in every}
        at_own_key = {p: info for p, info in rows.items() if info.storage_key is None}
        referenced = {info.storage_key for info in every if info.storage_key is not None}
        unindexed = sorted(set(blobs) - set(rows))
        vanished = sorted(p for p in at_own_key if p not in blobs)
        vanished += sorted(
            p for p, info in rows.items() if info.storage_key and info.storage_key not in versions
        )
        suspect = sorted(p for p in set(at_own_key) & set(blobs) if _may_differ(rows[p], blobs[p]))
        old = datetime.now(UTC) - ORPHAN_AGE
        orphans = [prefix + p for p in set(blobs) & set(rows) if rows[p].storage_key is not None]
        orphans += [
            key
            for key, blob in versions.items()
            if key not in referenced and (blob.modified is None or blob.modified < old)
        ]
        for chunk in batched(unindexed, 500):
            with index.writing(project) as tx:
                for object_path in chunk:
                    blob = storage.stat(prefix + object_path)
                    if blob is None or tx.get(object_path) is not None or tx.trashed(object_path):
                        continue  # deleted or indexed meanwhile
                    md5 = blob.md5 or _md5(storage, prefix + object_path)
                    tx.put(object_path, size=blob.size, md5=md5, uploader_id=None)
                    report.indexed += 1
        for chunk in batched(vanished, 500):
            with index.writing(project) as tx:
                for object_path in chunk:
                    row = tx.get(object_path) or tx.trashed(object_path)
                    if row is not None and storage.stat(row.key) is None and tx.remove(object_path):
                        report.dropped += 1
        for chunk in batched(suspect, 100):
            with index.writing(project) as tx:
                for object_path in chunk:
                    row, blob = tx.get(object_path), storage.stat(prefix + object_path)
                    if row is None or row.storage_key is not None or blob is None:
                        continue  # gone or replaced meanwhile: the next run sees it
                    md5 = blob.md5 or _md5(storage, prefix + object_path)
                    if (blob.size, md5) != (row.size, row.md5):
                        tx.put(object_path, size=blob.size, md5=md5, uploader_id=None)
                        report.corrected += 1
        for chunk in batched(sorted(orphans), 500):
            with index.writing(project) as tx:  # confirmed under the lock: still nothing points to them
                keys = [key for key in chunk if not _points_to(tx, project_id, key)]
                storage.delete_many(keys)
                report.orphans += len(keys)
        index.recount(project_id)
        report.projects += 1
    return report


def _points_to(tx: ProjectWrite, project_id: int, key: str) -> bool:
    """Whether a row of the project (live or trashed) has its bytes at key."""
    if key.startswith(VERSIONS_PREFIX):
        object_path = key.split("/", 3)[3]
    else:
        object_path = key.removeprefix(f"projects/{project_id}/")
    return any(row.key == key for row in tx.versions(object_path))


def _may_differ(row: ObjectInfo, blob: BlobInfo) -> bool:
    """Whether the stored bytes may not be the indexed ones: another size or md5, or (where the listing
    has no md5) written after the row was."""
    if blob.size != row.size or (blob.md5 is not None and blob.md5 != row.md5):
        return True
    return blob.md5 is None and blob.modified is not None and blob.modified > row.created_at


def _md5(storage: StorageBackend, key: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in storage.read(key):
        digest.update(chunk)
    return digest.hexdigest()
