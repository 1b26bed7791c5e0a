"""The data check queue: one row per project and commit that hooks asked to check, claimed by one worker
at a time (a conditional UPDATE, so replicas never check the same commit together), with the status
last posted to GitLab so that a status is posted only when it changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db.models import Base
from app.db.sql import database_errors, utc
from app.model.commits import CommitState

_CHECKS = Base.metadata.tables["data_checks"]
_C = _CHECKS.c


@dataclass(frozen=True)
class Posted:
    """A commit status as last posted: on which ref, in which state, saying what."""

    ref: str | None
    state: CommitState
    description: str


@dataclass(frozen=True)
class DataCheck:
    """A claimed check of one commit."""

    project_id: int
    sha: str
    ref: str | None
    attempts: int
    rechecks: int
    posted: Posted | None
    checked_at: datetime | None


def _check(row: Any) -> DataCheck:
    posted = (
        Posted(row.posted_ref, cast(CommitState, row.posted_state), row.posted_description or "")
        if row.posted_state is not None
        else None
    )
    checked = utc(row.checked_at) if row.checked_at is not None else None
    return DataCheck(row.project_id, row.sha, row.ref, row.attempts, row.rechecks, posted, checked)


def _free(now: datetime) -> Any:
    return or_(_C.claimed_until.is_(None), _C.claimed_until < now)


class DataCheckQueue:
    """Reads and writes of the data_checks table."""

    def __init__(self, engine: Engine) -> None:
        self._writer = engine.execution_options(writer=True)
        self._reader = engine.execution_options(reader=True)

    def request(self, project_id: int, sha: str, ref: str | None, *, now: datetime | None = None) -> str:
        """A hook asks for a check of the commit (its status set on the branch `ref`); one row per project
        and commit however many events name it (the first event's branch is the one). Returns what
        happened, for the hook's answer."""
        now = now or datetime.now(UTC)
        values = {
            "project_id": project_id,
            "sha": sha,
            "ref": ref,
            "requested_at": now,
            "due_at": now,
            "attempts": 0,
            "rechecks": 0,
        }
        with database_errors(), self._writer.begin() as conn:
            dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            inserted = conn.execute(
                dialect_insert(_CHECKS)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["project_id", "sha"])
                .returning(_C.sha)
            ).first()
        return "data check queued" if inserted is not None else "data check already asked for"

    def claim_due(self, *, lease: float, limit: int, now: datetime | None = None) -> list[DataCheck]:
        """Up to `limit` due checks no other worker holds, each leased to this one for `lease` seconds."""
        now = now or datetime.now(UTC)
        due = and_(_C.due_at.is_not(None), _C.due_at <= now, _free(now))
        claimed = []
        with database_errors():
            with self._reader.connect() as conn:
                candidates = conn.execute(
                    select(_C.project_id, _C.sha).where(due).order_by(_C.due_at).limit(limit)
                ).all()
            for project_id, sha in candidates:
                key = and_(_C.project_id == project_id, _C.sha == sha)
                with self._writer.begin() as conn:
                    taken = conn.execute(
                        update(_CHECKS).where(key, due).values(claimed_until=now + timedelta(seconds=lease))
                    )
                    if taken.rowcount == 1:
                        claimed.append(_check(conn.execute(select(_CHECKS).where(key)).one()))
        return claimed

    def record_posted(self, check: DataCheck, posted: Posted) -> None:
        """A status was posted while the check runs (its `pending`)."""
        with database_errors(), self._writer.begin() as conn:
            conn.execute(update(_CHECKS).where(*self._key(check)).values(**self._posted(posted)))

    def finish(self, check: DataCheck, posted: Posted | None, *, now: datetime | None = None) -> None:
        """The check is done (`posted`: the status GitLab now shows, None: none)."""
        now = now or datetime.now(UTC)
        values: dict[str, Any] = {"claimed_until": None, "attempts": 0, "checked_at": now, "due_at": None}
        if posted is not None:
            values.update(self._posted(posted))
        with database_errors(), self._writer.begin() as conn:
            conn.execute(update(_CHECKS).where(*self._key(check)).values(**values))

    def retry_later(self, check: DataCheck, delay: float, *, now: datetime | None = None) -> None:
        """GitLab (or the bucket, or the database) did not answer: due again after `delay` seconds."""
        now = now or datetime.now(UTC)
        with database_errors(), self._writer.begin() as conn:
            conn.execute(
                update(_CHECKS)
                .where(*self._key(check))
                .values(
                    claimed_until=None,
                    attempts=_C.attempts + 1,
                    due_at=now + timedelta(seconds=delay),
                )
            )

    def failed_since(self, since: datetime, *, max_rechecks: int, limit: int) -> list[DataCheck]:
        """Up to `limit` checks that ended `failed` after `since` (the newest first), none due, re-checked
        fewer than `max_rechecks` times."""
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(_CHECKS)
                .where(
                    _C.posted_state == "failed",
                    _C.due_at.is_(None),
                    _C.checked_at >= since,
                    _C.rechecks < max_rechecks,
                )
                .order_by(_C.checked_at.desc())
                .limit(limit)
            ).all()
        return [_check(row) for row in rows]

    def recheck(self, check: DataCheck, *, now: datetime | None = None) -> bool:
        """Make a finished check due again (uploads arrived); False when it already is."""
        now = now or datetime.now(UTC)
        with database_errors(), self._writer.begin() as conn:
            done = conn.execute(
                update(_CHECKS)
                .where(*self._key(check), _C.due_at.is_(None))
                .values(due_at=now, rechecks=_C.rechecks + 1)
            )
        return bool(done.rowcount == 1)

    def get(self, project_id: int, sha: str) -> DataCheck | None:
        with database_errors(), self._reader.connect() as conn:
            row = conn.execute(select(_CHECKS).where(_C.project_id == project_id, _C.sha == sha)).first()
        return None if row is None else _check(row)

    def forget(self, before: datetime) -> int:
        """Drop finished checks last asked for before `before` (GitLab keeps the statuses)."""
        with database_errors(), self._writer.begin() as conn:
            gone = conn.execute(delete(_CHECKS).where(_C.due_at.is_(None), _C.requested_at < before))
        return int(gone.rowcount)

    @staticmethod
    def _key(check: DataCheck) -> tuple[Any, Any]:
        return _C.project_id == check.project_id, _C.sha == check.sha

    @staticmethod
    def _posted(posted: Posted) -> dict[str, Any]:
        return {
            "posted_ref": posted.ref,
            "posted_state": posted.state,
            "posted_description": posted.description[:255],
        }
