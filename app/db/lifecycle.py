"""The lifecycle tables: the deletion queue (projects in state `deleting`), hook deliveries already
handled, cached project paths, and what the reconciler saw."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, select, update

from app.db.models import Base
from app.db.projects import insert_project
from app.db.sql import database_errors, insert_if_absent, utc
from app.model.projects import ACTIVE

DELETING, DELETED = "deleting", "deleted"
_PROJECTS = Base.metadata.tables["projects"]
_OBJECTS = Base.metadata.tables["objects"]
_DELIVERIES = Base.metadata.tables["hook_deliveries"]
_P, _O = _PROJECTS.c, _OBJECTS.c


@dataclass(frozen=True)
class QueuedDeletion:
    """A project whose data a worker has claimed to delete."""

    project_id: int
    path: str
    deleted_objects: int


class LifecycleWrite:
    """One transaction of lifecycle changes."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def first_delivery(self, delivery_id: str, event: str) -> bool:
        """Record a hook delivery; False when it was handled before (a retry or a resend)."""
        values = {"id": delivery_id[:128], "event": event[:64], "received_at": datetime.now(UTC)}
        return insert_if_absent(self._conn, _DELIVERIES, "id", values)

    def request_deletion(self, project_id: int, path: str | None, reason: str) -> bool:
        """Queue the project's data for deletion; it stops being served at once. False when it was
        already queued or deleted (idempotent)."""
        now = datetime.now(UTC)
        insert_project(self._conn, project_id, path)
        queued = self._conn.execute(
            update(_PROJECTS)
            .where(_P.id == project_id, _P.state == ACTIVE)
            .values(state=DELETING, deletion_requested_at=now, deletion_reason=reason[:32], updated_at=now)
        )
        return queued.rowcount == 1

    def rename_project(self, project_id: int, path: str) -> None:
        self._conn.execute(update(_PROJECTS).where(_P.id == project_id).values(path=path))

    def rename_namespace(self, old: str, new: str) -> int:
        """Cached paths under namespace `old` move to `new`; returns how many projects moved."""
        prefix = old.rstrip("/") + "/"
        moved = self._conn.execute(
            update(_PROJECTS)
            .where(_P.path.startswith(prefix, autoescape=True))
            .values(path=new.rstrip("/") + "/" + func.substr(_P.path, len(prefix) + 1))
        )
        return int(moved.rowcount)


class Lifecycle:
    """Lifecycle reads and writes on the index database."""

    def __init__(self, engine: Engine) -> None:
        self._writer = engine.execution_options(writer=True)
        self._reader = engine.execution_options(reader=True)
        self._postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def writing(self) -> Iterator[LifecycleWrite]:
        with database_errors(), self._writer.begin() as conn:
            yield LifecycleWrite(conn)

    def state(self, project_id: int) -> str | None:
        with database_errors(), self._reader.connect() as conn:
            found = conn.execute(select(_P.state).where(_P.id == project_id)).scalar()
        return None if found is None else str(found)

    def claim_deletion(self, lease: float) -> QueuedDeletion | None:
        """The oldest queued deletion no other worker holds, leased to this one for `lease` seconds
        (SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers anyway)."""
        now = datetime.now(UTC)
        with database_errors(), self._writer.begin() as conn:
            candidate = conn.execute(
                select(_P.id, _P.path, _P.deleted_objects)
                .where(
                    _P.state == DELETING,
                    (_P.deletion_claimed_until.is_(None)) | (_P.deletion_claimed_until < now),
                )
                .order_by(_P.deletion_requested_at, _P.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if candidate is None:
                return None
            conn.execute(
                update(_PROJECTS)
                .where(_P.id == candidate.id)
                .values(deletion_claimed_until=now + timedelta(seconds=lease))
            )
        return QueuedDeletion(candidate.id, candidate.path, candidate.deleted_objects)

    def next_batch(self, project_id: int, size: int) -> list[tuple[str, int, str]]:
        """(path, size, storage key) of up to `size` indexed objects of a project being deleted."""
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(_O.path, _O.size, _O.storage_key)
                .where(_O.project_id == project_id)
                .order_by(_O.path)
                .limit(size)
            ).all()
        return [(r.path, r.size, r.storage_key or f"projects/{project_id}/{r.path}") for r in rows]

    def forget(self, project_id: int, batch: Sequence[tuple[str, int, str]], lease: float) -> None:
        """Drop index rows whose blobs are deleted, count the progress and extend the lease."""
        paths = [path for path, _, _ in batch]
        now = datetime.now(UTC)
        with database_errors(), self._writer.begin() as conn:
            conn.execute(delete(_OBJECTS).where(_O.project_id == project_id, _O.path.in_(paths)))
            conn.execute(
                update(_PROJECTS)
                .where(_P.id == project_id)
                .values(
                    used_bytes=_P.used_bytes - sum(size for _, size, _ in batch),
                    object_count=_P.object_count - len(batch),
                    deleted_objects=_P.deleted_objects + len(batch),
                    deletion_claimed_until=now + timedelta(seconds=lease),
                    updated_at=now,
                )
            )

    def finish_deletion(self, project_id: int) -> None:
        now = datetime.now(UTC)
        with database_errors(), self._writer.begin() as conn:
            conn.execute(
                update(_PROJECTS)
                .where(_P.id == project_id, _P.state == DELETING)
                .values(
                    state=DELETED,
                    used_bytes=0,
                    object_count=0,
                    trash_bytes=0,
                    trash_count=0,
                    deletion_claimed_until=None,
                    updated_at=now,
                )
            )

    def backlog(self) -> int:
        """Projects waiting for (or in) deletion."""
        with database_errors(), self._reader.connect() as conn:
            return int(conn.execute(select(func.count()).where(_P.state == DELETING)).scalar() or 0)

    def active_projects(self) -> list[tuple[int, str, datetime | None]]:
        """(id, path, missing since) of every project whose data is served."""
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(_P.id, _P.path, _P.missing_since).where(_P.state == ACTIVE).order_by(_P.id)
            ).all()
        return [(r.id, r.path, None if r.missing_since is None else utc(r.missing_since)) for r in rows]

    def set_missing_since(self, project_id: int, since: datetime | None) -> None:
        with database_errors(), self._writer.begin() as conn:
            conn.execute(update(_PROJECTS).where(_P.id == project_id).values(missing_since=since))

    def forget_deliveries(self, older_than: datetime) -> int:
        with database_errors(), self._writer.begin() as conn:
            return int(
                conn.execute(delete(_DELIVERIES).where(_DELIVERIES.c.received_at < older_than)).rowcount
            )
