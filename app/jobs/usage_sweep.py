"""The usage sweep: the index reconciled with what the bucket holds (blobs it lacks, rows whose blob is
gone, rows whose bytes changed under them, e.g. an overwrite cut off by a crash between the bucket and
the index), and usage totals recounted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.db.index import ObjectIndex
from app.db.lifecycle import Lifecycle
from app.jobs import batched
from app.model import BlobInfo, ObjectInfo, Project, Visibility
from app.storage.base import StorageBackend


@dataclass
class SweepReport:
    projects: int = 0
    indexed: int = 0  # blobs found in the bucket without an index row
    dropped: int = 0  # index rows whose blob is gone
    corrected: int = 0  # index rows whose size or md5 were not those of the stored bytes


def sweep_usage(lifecycle: Lifecycle, index: ObjectIndex, storage: StorageBackend) -> SweepReport:
    """List each active project's prefix in the bucket: index what the index lacks, drop rows whose blob
    is gone (each confirmed again under the project's lock), and correct the usage totals."""
    report = SweepReport()
    for project_id, path, _ in lifecycle.active_projects():
        project = Project(id=project_id, path=path, visibility=Visibility.PRIVATE)
        prefix = f"projects/{project_id}/"
        blobs = {blob.key[len(prefix) :]: blob for blob in storage.list(prefix)}
        rows = {info.path: info for info in index.find(project_id, prefix="", trashed=None)}
        unindexed = sorted(set(blobs) - set(rows))
        vanished = sorted(set(rows) - set(blobs))
        suspect = sorted(p for p in set(rows) & set(blobs) if _may_differ(rows[p], blobs[p]))
        for chunk in batched(unindexed, 500):
            with index.writing(project) as tx:
                for object_path in chunk:
                    blob = storage.stat(prefix + object_path)
                    if blob is None or tx.get(object_path) is not None:
                        continue  # deleted or indexed meanwhile
                    md5 = blob.md5 or _md5(storage, prefix + object_path)
                    tx.put(object_path, size=blob.size, md5=md5, uploader_id=None)
                    report.indexed += 1
        for chunk in batched(vanished, 500):
            with index.writing(project) as tx:
                for object_path in chunk:
                    if storage.stat(prefix + object_path) is None and tx.remove(object_path):
                        report.dropped += 1
        for chunk in batched(suspect, 100):
            with index.writing(project) as tx:
                for object_path in chunk:
                    row, blob = tx.get(object_path), storage.stat(prefix + object_path)
                    if row is None or blob is None:
                        continue  # gone meanwhile: the next run sees it
                    md5 = blob.md5 or _md5(storage, prefix + object_path)
                    if (blob.size, md5) != (row.size, row.md5):
                        tx.put(object_path, size=blob.size, md5=md5, uploader_id=None)
                        report.corrected += 1
        index.recount(project_id)
        report.projects += 1
    return report


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
