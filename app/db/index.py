"""The object index: look-ups for the data plane and per-project write transactions with usage totals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.models import ObjectRow, ProjectRow
from app.model import ObjectInfo, Project


def _info(row: ObjectRow) -> ObjectInfo:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return ObjectInfo(
        project_id=row.project_id, path=row.path, size=row.size, md5=row.md5, created_at=created
    )


class _PreparedQuery:
    """A select compiled once and run on a connection each thread keeps for itself (no pool round trip,
    no transaction). About 6 µs instead of Core's 55 µs: most of a HEAD's or GET's time otherwise
    (measured with scripts/bench/get_head_rps.py)."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        self._engine = engine
        compiled = statement.compile(dialect=engine.dialect)
        self._sql = compiled.string
        self._order = compiled.positiontup if compiled.positional else None
        self._convert = [
            column.type.dialect_impl(engine.dialect).result_processor(engine.dialect, None)
            for column in statement.selected_columns
        ]
        self._local = threading.local()

    def _connection(self) -> Any:
        connection: Any = getattr(self._local, "connection", None)
        if connection is None:
            pooled = self._engine.raw_connection()
            pooled.detach()  # this thread's own from now on; the pool stays free for writers
            connection = pooled.dbapi_connection
            if self._engine.dialect.name == "postgresql":
                connection.autocommit = True
            self._local.connection = connection
        return connection

    def first(self, **params: Any) -> tuple[Any, ...] | None:
        """The first row with every column converted to its Python type, or None."""
        args: Any = tuple(params[name] for name in self._order) if self._order else params
        for attempt in (1, 2):
            connection = self._connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(self._sql, args)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
                break
            except self._engine.dialect.loaded_dbapi.OperationalError:
                self._local.connection = None  # e.g. PostgreSQL restarted: reconnect once
                connection.close()
                if attempt == 2:
                    raise
        if row is None:
            return None
        return tuple(
            convert(value) if convert else value for convert, value in zip(self._convert, row, strict=True)
        )


class ProjectWrite:
    """One write transaction on one project, holding the project's write lock until it ends."""

    def __init__(self, session: Session, project: ProjectRow) -> None:
        self._session = session
        self._project = project

    def _row(self, path: str) -> ObjectRow | None:
        return self._session.scalars(
            select(ObjectRow).where(ObjectRow.project_id == self._project.id, ObjectRow.path == path)
        ).one_or_none()

    def get(self, path: str) -> ObjectInfo | None:
        row = self._row(path)
        return _info(row) if row else None

    def put(self, path: str, *, size: int, md5: str, uploader_id: int | None) -> None:
        """Index an object (replacing what was at its path) and update the project's usage."""
        row = self._row(path)
        if row is None:
            row = ObjectRow(project_id=self._project.id, path=path, size=size, md5=md5)
            self._session.add(row)
            self._project.object_count += 1
            self._project.used_bytes += size
        else:
            self._project.used_bytes += size - row.size
            row.size, row.md5, row.created_at = size, md5, datetime.now(UTC)
        row.uploader_id = uploader_id

    def remove(self, path: str) -> bool:
        row = self._row(path)
        if row is None:
            return False
        self._project.object_count -= 1
        self._project.used_bytes -= row.size
        self._session.delete(row)
        return True


class ObjectIndex:
    """Read and write access to the index; writes to one project are serialised."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(reader=True)
        self._writer = engine.execution_options(writer=True)
        objects = ObjectRow.__table__.c
        self._get_object = _PreparedQuery(
            engine,
            select(objects.size, objects.md5, objects.created_at).where(
                objects.project_id == bindparam("project_id"), objects.path == bindparam("path")
            ),
        )

    def get(self, project_id: int, path: str) -> ObjectInfo | None:
        """The indexed object at a path: HEAD and GET of every object run this."""
        row = self._get_object.first(project_id=project_id, path=path)
        if row is None:
            return None
        size, md5, created = row
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        return ObjectInfo(project_id=project_id, path=path, size=size, md5=md5, created_at=created)

    def project_usage(self, project_id: int) -> tuple[int, int]:
        """(bytes used, object count) of a project; zeros when it has no data."""
        with Session(self._engine) as session:
            row = session.get(ProjectRow, project_id)
            return (row.used_bytes, row.object_count) if row else (0, 0)

    @contextmanager
    def writing(self, project: Project) -> Iterator[ProjectWrite]:
        """A transaction that locks the project (creating its row on first write) and commits on exit."""
        with Session(self._writer) as session, session.begin():
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            now = datetime.now(UTC)
            session.execute(
                insert(ProjectRow)
                .values(
                    id=project.id,
                    path=project.path,
                    state="active",
                    used_bytes=0,
                    object_count=0,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            row = session.scalars(
                select(ProjectRow).where(ProjectRow.id == project.id).with_for_update()
            ).one()
            if row.path != project.path:
                row.path = project.path
            yield ProjectWrite(session, row)

    def check(self) -> None:
        """Raise when the database cannot be queried."""
        with Session(self._engine) as session:
            session.execute(select(1))

    def find(self, project_id: int, *, prefix: str, suffix: str = "") -> Iterator[ObjectInfo]:
        """A project's objects whose path starts with prefix and ends with suffix, paged by id."""
        last_id, page = 0, 500
        while True:
            with Session(self._engine) as session:
                rows = session.scalars(
                    select(ObjectRow)
                    .where(
                        ObjectRow.project_id == project_id,
                        ObjectRow.path.startswith(prefix, autoescape=True),
                        ObjectRow.path.endswith(suffix, autoescape=True),
                        ObjectRow.id > last_id,
                    )
                    .order_by(ObjectRow.id)
                    .limit(page)
                ).all()
            yield from (_info(row) for row in rows)
            if len(rows) < page:
                return
            last_id = rows[-1].id
