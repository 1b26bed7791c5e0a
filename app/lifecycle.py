"""A project's data follows the project in GitLab: hook events applied, queued deletions carried out,
projects GitLab no longer has found, the index reconciled with the bucket, stale uploads dropped. Plain
functions over the services; the worker schedules them, tests call them directly."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice

from app.db.index import ObjectIndex
from app.db.lifecycle import Lifecycle
from app.db.shared_cache import SharedAuthCache
from app.db.uploads import UploadSessions
from app.errors import GitLabUnavailable, PermissionDenied, StorageUnavailable
from app.gitlab.gateway import GitLabGateway, ProjectStatus
from app.hooks import HookEvent
from app.model import Credential, Project, Visibility, upload_key
from app.storage.base import StorageBackend

log = logging.getLogger(__name__)


def apply_hook(
    lifecycle: Lifecycle, auth_cache: SharedAuthCache, event: HookEvent, delivery: str | None
) -> str:
    """Record what a hook delivery means (the worker does the work); returns the outcome. A delivery
    already handled changes nothing."""
    with lifecycle.writing() as tx:
        if delivery is not None and not tx.first_delivery(delivery, event.name):
            return "duplicate"
        if event.name == "project_destroy" and event.project_id is not None:
            queued = tx.request_deletion(event.project_id, event.path, "hook")
            return "deletion queued" if queued else "already deleted"
        if event.name in ("project_rename", "project_transfer") and event.project_id is not None:
            assert event.path is not None
            tx.rename_project(event.project_id, event.path)
            outcome = "pending deletion" if event.pending_deletion else "path updated"
        elif event.name in ("group_rename", "user_rename"):  # a user's namespace is the username
            assert event.path is not None and event.old_path is not None
            outcome = f"{tx.rename_namespace(event.old_path, event.path)} paths updated"
        else:
            return "ignored"
    auth_cache.clear()  # answers looked up by an old path must not outlive the move
    return outcome


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
            storage.delete_many([f"projects/{project_id}/{path}" for path, _ in rows])
            lifecycle.forget(project_id, rows, lease)
            report.objects += len(rows)
        for leftovers in batched((blob.key for blob in storage.list(f"projects/{project_id}/")), batch):
            storage.delete_many(leftovers)  # unindexed blobs (an upload cut off mid-commit)
        lifecycle.finish_deletion(project_id)
        report.projects.append(project_id)
        log.info("deleted the data of project %s", project_id)
    return report


@dataclass
class ReconcileReport:
    checked: int = 0
    missing: list[int] = field(default_factory=list)  # first seen missing this run
    queued: list[int] = field(default_factory=list)
    skipped: str | None = None  # why no decision was taken


def reconcile(
    lifecycle: Lifecycle,
    gateway: GitLabGateway,
    service: Credential | None,
    *,
    grace: float,
    now: datetime | None = None,
) -> ReconcileReport:
    """Queue the deletion of projects GitLab no longer has: missing at two checks at least `grace`
    seconds apart, asked with an administrator's token (a project the token cannot see also looks
    missing), never one that is only marked for deletion. GitLab unreachable: no decision at all."""
    report, now = ReconcileReport(), now or datetime.now(UTC)
    if service is None:
        report.skipped = "no service token (REGISTRY_GITLAB_SERVICE_TOKEN)"
        return report
    projects = lifecycle.active_projects()
    try:
        if not gateway.current_user(service).is_admin:
            report.skipped = "the service token is not an administrator's: it cannot see every project"
            return report
        statuses = [gateway.project_status(service, project_id) for project_id, _, _ in projects]
    except (GitLabUnavailable, PermissionDenied) as e:
        report.skipped = f"GitLab did not answer: {e.message}"
        return report
    for (project_id, path, missing_since), status in zip(projects, statuses, strict=True):
        report.checked += 1
        if status is not ProjectStatus.MISSING:
            if missing_since is not None:
                lifecycle.set_missing_since(project_id, None)
            continue
        if missing_since is None:
            lifecycle.set_missing_since(project_id, now)
            report.missing.append(project_id)
        elif now - missing_since >= timedelta(seconds=grace):
            with lifecycle.writing() as tx:  # only a project still active is queued
                if tx.request_deletion(project_id, path, "reconciler"):
                    report.queued.append(project_id)
                    log.warning(
                        "project %s (%s) is gone from GitLab: its data is queued for deletion",
                        project_id,
                        path,
                    )
    return report


@dataclass
class SweepReport:
    projects: int = 0
    indexed: int = 0  # blobs found in the bucket without an index row
    dropped: int = 0  # index rows whose blob is gone


def sweep_usage(lifecycle: Lifecycle, index: ObjectIndex, storage: StorageBackend) -> SweepReport:
    """List each active project's prefix in the bucket: index what the index lacks, drop rows whose blob
    is gone (each confirmed again under the project's lock), and correct the usage totals."""
    report = SweepReport()
    for project_id, path, _ in lifecycle.active_projects():
        project = Project(id=project_id, path=path, visibility=Visibility.PRIVATE)
        prefix = f"projects/{project_id}/"
        blobs = {blob.key[len(prefix) :]: blob for blob in storage.list(prefix)}
        indexed = {info.path for info in index.find(project_id, prefix="")}
        unindexed = sorted(set(blobs) - indexed)
        vanished = sorted(indexed - set(blobs))
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
        index.recount(project_id)
        report.projects += 1
    return report


def _md5(storage: StorageBackend, key: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in storage.read(key):
        digest.update(chunk)
    return digest.hexdigest()


def remove_stale_uploads(
    uploads: UploadSessions, storage: StorageBackend, *, age: float, now: datetime | None = None
) -> int:
    """Abort direct upload sessions past their expiry and unfinished streamed uploads older than `age`."""
    removed, now = 0, now or datetime.now(UTC)
    for session_id, handle in uploads.expired(now):
        try:
            storage.abort_direct(upload_key(session_id), handle)
        except StorageUnavailable:
            continue  # next run
        uploads.close(session_id)
        removed += 1
    return removed + storage.remove_stale_staging(now.timestamp() - age)


def forget_old_deliveries(lifecycle: Lifecycle, *, age: float, now: datetime | None = None) -> int:
    """Drop records of hook deliveries older than `age` (GitLab resends within hours, by hand within days)."""
    return lifecycle.forget_deliveries((now or datetime.now(UTC)) - timedelta(seconds=age))


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of up to `size` items (itertools.batched arrives with Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
