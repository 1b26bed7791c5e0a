"""Queued project deletions carried out: a project GitLab deleted loses its data, batch by batch,
resumably after a crash."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.db.lifecycle import Lifecycle
from app.jobs import batched
from app.model.paths import VERSIONS_PREFIX
from app.storage.base import StorageBackend

log = logging.getLogger(__name__)


@dataclass
class DeletionReport:
    projects: list[int] = field(default_factory=list)
    objects: int = 0


def delete_queued_projects(
    lifecycle: Lifecycle, storage: StorageBackend, *, batch: int = 1000, lease: float = 300
) -> DeletionReport:
    """Delete every queued project's objects, `batch` at a time: bucket first, then the index rows and
    the progress (a crash repeats at most one batch; deleting is idempotent), then whatever the bucket
    still holds under the project's prefix, then mark the project deleted."""
    report = DeletionReport()
    while (claimed := lifecycle.claim_deletion(lease)) is not None:
        project_id = claimed.project_id
        log.info("deleting the data of project %s (%s)", project_id, claimed.path)
        while rows := lifecycle.next_batch(project_id, batch):
            storage.delete_many([key for _, _, key in rows])
            lifecycle.forget(project_id, rows, lease)
            report.objects += len(rows)
        for prefix in (f"projects/{project_id}/", f"{VERSIONS_PREFIX}{project_id}/"):
            for leftovers in batched((blob.key for blob in storage.list(prefix)), batch):
                storage.delete_many(leftovers)  # unindexed blobs (an upload cut off mid-commit)
        lifecycle.finish_deletion(project_id)
        report.projects.append(project_id)
        log.info("deleted the data of project %s", project_id)
    return report
