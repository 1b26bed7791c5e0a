"""The worker process (`data-registry worker`): APScheduler's BlockingScheduler runs the lifecycle jobs
on their intervals, one run of each job at a time. Never inside gunicorn."""

from __future__ import annotations

import dataclasses
import logging
import signal
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from app.components import Components
from app.data_checks import DataChecker
from app.jobs.cleanup import forget_old_deliveries, remove_stale_uploads
from app.jobs.data_checks import run_data_checks
from app.jobs.deletion import delete_queued_projects
from app.jobs.reconcile import reconcile
from app.jobs.usage_sweep import sweep_usage
from app.model.projects import Project, Visibility
from app.trash import purge_trash

log = logging.getLogger(__name__)
STALE_UPLOADS_INTERVAL = 3600
DELIVERY_RECORD_AGE = 30 * 24 * 3600  # how long a handled hook delivery is remembered against resends


def jobs(parts: Components) -> dict[str, tuple[Callable[[], object], int]]:
    """Each job as a function of no arguments, with its interval in seconds."""
    settings = parts.settings
    found: dict[str, tuple[Callable[[], object], int]] = {
        "deletions": (
            lambda: delete_queued_projects(
                parts.lifecycle, parts.storage, batch=settings.deletion_batch, lease=settings.deletion_lease
            ),
            settings.deletion_interval,
        ),
        "reconcile": (
            lambda: reconcile(parts.lifecycle, parts.gateway, parts.service, grace=settings.reconcile_grace),
            settings.reconcile_interval,
        ),
        "usage_sweep": (
            lambda: sweep_usage(parts.lifecycle, parts.index, parts.storage),
            settings.usage_sweep_interval,
        ),
        "stale_uploads": (
            lambda: remove_stale_uploads(parts.upload_sessions, parts.storage, age=settings.stale_upload_age),
            STALE_UPLOADS_INTERVAL,
        ),
        "trash_purge": (
            lambda: purge_trash(
                parts.index,
                parts.storage,
                [Project(i, path, Visibility.PRIVATE) for i, path, _ in parts.lifecycle.active_projects()],
                retention=settings.trash_retention,
            ),
            STALE_UPLOADS_INTERVAL,
        ),
        "hook_deliveries": (
            lambda: forget_old_deliveries(parts.lifecycle, age=DELIVERY_RECORD_AGE),
            STALE_UPLOADS_INTERVAL,
        ),
    }
    if parts.signin is not None:
        found["browser_sessions"] = (parts.signin.purge, STALE_UPLOADS_INTERVAL)
    found["data_checks"] = (
        lambda: run_data_checks(
            parts.data_checks,
            _checker(parts),
            parts.gateway,
            parts.status_credential,
            parts.index,
            settle=settings.data_check_settle,
        ),
        settings.data_check_interval,
    )
    found["data_check_records"] = (
        lambda: parts.data_checks.forget(datetime.now(UTC) - timedelta(seconds=DELIVERY_RECORD_AGE)),
        STALE_UPLOADS_INTERVAL,
    )
    return found


def _checker(parts: Components) -> DataChecker:
    return DataChecker(
        gateway=parts.gateway,
        index=parts.index,
        storage=parts.storage,
        public_url=parts.settings.public_url,
    )


def readable(report: object) -> str:
    """A job's report for people: `2 objects, projects: 101, 104` rather than a dataclass repr."""
    if not dataclasses.is_dataclass(report) or isinstance(report, type):
        return f"{report:,}" if isinstance(report, int) else str(report)
    said = []
    for field in dataclasses.fields(report):
        name, value = field.name.replace("_", " "), getattr(report, field.name)
        if isinstance(value, bool) or not isinstance(value, int | float | list | tuple | set):
            said.append(f"{name}: {value}")
        elif isinstance(value, int | float):
            said.append(f"{value:,} {name}")
        else:
            said.append(f"{name}: {', '.join(map(str, value)) or 'none'}")
    return ", ".join(said)


def _logged(parts: Components, name: str, job: Callable[[], object]) -> Callable[[], bool]:
    def run() -> bool:
        started = datetime.now(UTC)
        try:
            report = job()
        except Exception:  # a failed run is logged; the next run tries again
            log.exception("job %s failed", name)
            parts.metrics.job_runs.labels(job=name, outcome="failed").inc()
            return False
        seconds = (datetime.now(UTC) - started).total_seconds()
        log.info("job %s done in %.1f s: %s", name, seconds, readable(report))
        parts.metrics.job_runs.labels(job=name, outcome="ok").inc()
        return True

    return run


def run_once(parts: Components, names: Iterable[str]) -> bool:
    """Run the named jobs once each, in order; False when one failed."""
    known = jobs(parts)
    return all([_logged(parts, name, known[name][0])() for name in names])


def run_forever(parts: Components) -> None:
    """Every job now, then on its interval, until SIGTERM or SIGINT (a running job finishes first)."""
    scheduler = BlockingScheduler(timezone=UTC)
    for name, (job, interval) in jobs(parts).items():
        scheduler.add_job(
            _logged(parts, name, job),
            "interval",
            seconds=interval,
            id=name,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the running jobs", signum)
        scheduler.shutdown(wait=False)

    if parts.service is None:
        log.warning("job reconcile: off (set REGISTRY_GITLAB_SERVICE_TOKEN, an administrator's token)")
    if parts.status_credential is None:
        log.warning(
            "job data_checks: off (set REGISTRY_GITLAB_STATUS_TOKEN or REGISTRY_GITLAB_SERVICE_TOKEN,"
            " scope api)"
        )
    if parts.settings.worker_metrics_port:
        parts.metrics.serve(parts.settings.worker_metrics_port)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker started: %s", ", ".join(f"{n} every {i} s" for n, (_, i) in jobs(parts).items()))
    scheduler.start()
