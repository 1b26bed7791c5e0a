"""The reconciler: projects GitLab no longer has (no hook arrived) are found and queued for deletion."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.db.lifecycle import Lifecycle
from app.errors import GitLabUnavailable, PermissionDenied
from app.gitlab.gateway import GitLabGateway, ProjectStatus
from app.model.identity import Credential

log = logging.getLogger(__name__)


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
