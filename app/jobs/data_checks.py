"""The data check job (DESIGN 3.12): checks the commits hooks asked about and posts their commit status
(`pending` once, then `success`, `failed` or `skipped`, each only when it changes); re-checks a failed
commit once uploads to its project have settled; a GitLab outage makes a check due again later."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.data_checks import PENDING, STATUS_NAME, DataChecker, Verdict
from app.db.data_checks import DataCheck, DataCheckQueue, Posted
from app.db.index import ObjectIndex
from app.errors import (
    DatabaseUnavailable,
    GitLabUnavailable,
    NotFound,
    PermissionDenied,
    StorageUnavailable,
)
from app.gitlab.gateway import GitLabGateway
from app.model.identity import Credential

log = logging.getLogger(__name__)
LEASE = 300  # seconds a worker holds a claimed check (a check reads for at most READ_BUDGET)
BATCH = 20  # checks per run
MAX_ATTEMPTS = 10  # runs in a row GitLab may fail a check before it is dropped (about 9 hours of backoff)
MAX_RECHECKS = 20  # re-checks of one failed commit after uploads
RECHECK_WINDOW = timedelta(days=7)  # failed commits older than this are not re-checked
RECHECK_SCAN = 500  # failed checks looked at per run, the newest first


@dataclass(frozen=True)
class DataCheckReport:
    """What one run did."""

    checked: int = 0
    posted: int = 0
    retried: int = 0
    rechecks: int = 0


def backoff(attempts: int, retry_after: int = 0) -> float:
    """Seconds before a check GitLab did not answer is tried again: 30 s, 1, 2, 4 … minutes, at most 1 h."""
    return float(max(retry_after, min(30 * 2**attempts, 3600)))


def schedule_rechecks(
    queue: DataCheckQueue, index: ObjectIndex, *, settle: float, now: datetime | None = None
) -> int:
    """Make failed checks due again when their project's newest object is newer than the check and at
    least `settle` seconds old (a push has finished: debounced, without another hook event)."""
    now = now or datetime.now(UTC)
    newest: dict[int, datetime | None] = {}
    made = 0
    failed = queue.failed_since(now - RECHECK_WINDOW, max_rechecks=MAX_RECHECKS, limit=RECHECK_SCAN)
    for check in failed:
        if check.project_id not in newest:
            newest[check.project_id] = index.last_upload(check.project_id)
        last = newest[check.project_id]
        settled = last is not None and last <= now - timedelta(seconds=settle)
        if settled and check.checked_at is not None and last is not None and last > check.checked_at:
            made += queue.recheck(check, now=now)
    return made


def run_data_checks(
    queue: DataCheckQueue,
    checker: DataChecker,
    gateway: GitLabGateway,
    credential: Credential | None,
    index: ObjectIndex,
    *,
    settle: float,
    lease: float = LEASE,
    batch: int = BATCH,
    now: datetime | None = None,
) -> DataCheckReport:
    """One run: schedule re-checks, then check what is due (each commit by one worker at a time)."""
    if credential is None:  # said once at start-up (app.jobs.scheduler)
        return DataCheckReport()
    now = now or datetime.now(UTC)
    rechecks = schedule_rechecks(queue, index, settle=settle, now=now)
    checked = posted = retried = 0
    for check in queue.claim_due(lease=lease, limit=batch, now=now):
        try:
            posted += _check_one(queue, checker, gateway, credential, check)
            checked += 1
        except (GitLabUnavailable, StorageUnavailable, DatabaseUnavailable) as e:
            retried += 1
            _later(queue, check, e, now)
        except Exception as e:  # one commit's surprise must not stop the others: logged, retried alike
            log.exception("data check of %s in project %s failed", check.sha, check.project_id)
            retried += 1
            _later(queue, check, e, now)
    return DataCheckReport(checked, posted, retried, rechecks)


def _later(queue: DataCheckQueue, check: DataCheck, error: Exception, now: datetime) -> None:
    """Due again after the backoff, or dropped after MAX_ATTEMPTS failed runs."""
    if check.attempts + 1 >= MAX_ATTEMPTS:
        log.warning("data check of %s in project %s dropped: %s", check.sha, check.project_id, error)
        queue.finish(check, None, now=now)
        return
    wait = backoff(check.attempts, getattr(error, "retry_after", 0))
    log.info("data check of %s: %s; again in %.0f s", check.sha, error, wait)
    queue.retry_later(check, wait, now=now)


def _check_one(
    queue: DataCheckQueue,
    checker: DataChecker,
    gateway: GitLabGateway,
    credential: Credential,
    check: DataCheck,
) -> int:
    """Check one claimed commit; returns how many statuses it posted."""
    try:
        data = checker.open(credential, check.project_id, check.sha)
    except (NotFound, PermissionDenied) as e:  # gone, or not ours to read: nothing to say
        log.info("data check of %s in project %s: %s", check.sha, check.project_id, e)
        queue.finish(check, None)
        return 0
    if data is None:  # no DVC remote in this registry: no status at all
        queue.finish(check, None)
        return 0
    posts, last = 0, check.posted
    if last is None or last.ref != check.ref:
        pending = Posted(check.ref, "pending", PENDING)
        posts += _post(gateway, credential, check, pending, data.target_url)
        queue.record_posted(check, pending)
        last = pending
    verdict: Verdict = checker.verdict(credential, data)
    result = Posted(check.ref, verdict.state, verdict.description)
    if result != last:
        posts += _post(gateway, credential, check, result, verdict.target_url)
    queue.finish(check, result)
    return posts


def _post(
    gateway: GitLabGateway, credential: Credential, check: DataCheck, status: Posted, target_url: str | None
) -> int:
    try:
        gateway.set_commit_status(
            credential,
            check.project_id,
            check.sha,
            state=status.state,
            name=STATUS_NAME,
            description=status.description,
            target_url=target_url,
            ref=status.ref,
        )
    except (NotFound, PermissionDenied) as e:  # recorded as posted all the same: not asked again
        log.warning("data check of %s in project %s: status not set: %s", check.sha, check.project_id, e)
        return 0
    return 1
