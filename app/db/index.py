"""The object index: look-ups for the data plane and per-project write transactions with usage totals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db.models import Base, ObjectRow, ProjectRow
from app.errors import DatabaseUnavailable, ProjectDeleted
from app.model import ObjectInfo, Project


def insert_if_absent(conn: Connection, table: Table, unique: str, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT (unique) DO NOTHING on SQLite and PostgreSQL; True when the row was inserted."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[unique])
        .returning(table.c[unique])  # rowcount is -1 here with psycopg: a returned row says it
    )
    return conn.execute(statement).first() is not None


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn a database that cannot answer (down, locked too long, pool exhausted) into a 503."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        raise DatabaseUnavailable() from None


def utc(moment: datetime) -> datetime:
    """Every datetime stored here is UTC: SQLite hands it back naive, PostgreSQL in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _info(row: ObjectRow) -> ObjectInfo:
    return ObjectInfo(
        project_id=row.project_id,
        path=row.path,
        size=row.size,
        md5=row.md5,
        created_at=utc(row.created_at),
    )


class PreparedQuery:
    """A select compiled once and run on a connection each thread keeps for itself (no pool round trip,
    no transaction). About 6 µs instead of Core's 55 µs: most of a HEAD's or GET's time otherwise
    (measured with scripts/bench/get_head_rps.py)."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        self._engine = engine
        compiled = statement.compile(dialect=engine.dialect)
        self._sql = compiled.string
        self._order = compiled.positiontup if compiled.positional else None
        # SQLite hands back strings for datetimes; psycopg already returns Python types.
        self._convert = [
            column.type.dialect_impl(engine.dialect).result_processor(engine.dialect, None)
            if engine.dialect.name == "sqlite"
            else None
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
        dbapi = self._engine.dialect.loaded_dbapi
        for attempt in (1, 2):
            try:
                cursor = self._connection().cursor()
                try:
                    cursor.execute(self._sql, args)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
                break
            except (
                sa_exc.OperationalError,
                sa_exc.InterfaceError,
                dbapi.OperationalError,
                dbapi.InterfaceError,
            ):
                broken, self._local.connection = getattr(self._local, "connection", None), None
                if broken is not None:
                    broken.close()
                if attempt == 2:  # the first try may have used a connection the server dropped
                    raise DatabaseUnavailable() from None
        if row is None:
            return None
        return tuple(
            convert(value) if convert else value for convert, value in zip(self._convert, row, strict=True)
        )


_OBJECTS = Base.metadata.tables["objects"]
_PROJECTS = Base.metadata.tables["projects"]
_O, _P = _OBJECTS.c, _PROJECTS.c
# Statements built once (every upload runs them); bind names avoid column names, which Core reserves.
_THIS_OBJECT = (_O.project_id == bindparam("b_project"), _O.path == bindparam("b_path"))
_SELECT_OBJECT = select(_O.size, _O.md5, _O.created_at).where(*_THIS_OBJECT)
_INSERT_OBJECT = insert(_OBJECTS)
_UPDATE_OBJECT = update(_OBJECTS).where(*_THIS_OBJECT)
_DELETE_OBJECT = delete(_OBJECTS).where(*_THIS_OBJECT)
_ADD_USAGE = (
    update(_PROJECTS)
    .where(_P.id == bindparam("b_project"))
    .values(
        used_bytes=_P.used_bytes + bindparam("b_bytes"),
        object_count=_P.object_count + bindparam("b_count"),
        updated_at=bindparam("b_now"),
    )
)
_LOCK_PROJECT = (
    select(_P.path, _P.state, _P.used_bytes, _P.quota_bytes)
    .where(_P.id == bindparam("b_project"))
    .with_for_update()
)
ACTIVE = "active"
DELETED_MESSAGE = "Project {} was deleted in GitLab; its data is being removed"


class ProjectWrite:
    """One write transaction on one project, holding the project's write lock until it ends.
    Core statements (no ORM): an upload's index work is a handful of single-row statements."""

    def __init__(
        self, conn: Connection, project_id: int, *, used_bytes: int, quota_bytes: int | None
    ) -> None:
        self._conn = conn
        self._project_id = project_id
        self._seen: dict[str, ObjectInfo | None] = {}
        self.used_bytes = used_bytes  # as of this transaction, kept current by put and remove
        self.quota_bytes = quota_bytes  # the project's own quota, None: the default

    def _where(self, path: str) -> dict[str, Any]:
        return {"b_project": self._project_id, "b_path": path}

    def get(self, path: str) -> ObjectInfo | None:
        if path not in self._seen:
            row = self._conn.execute(_SELECT_OBJECT, self._where(path)).first()
            self._seen[path] = (
                None
                if row is None
                else ObjectInfo(
                    project_id=self._project_id,
                    path=path,
                    size=row.size,
                    md5=row.md5,
                    created_at=utc(row.created_at),
                )
            )
        return self._seen[path]

    def _add_usage(self, bytes_delta: int, count_delta: int) -> None:
        self.used_bytes += bytes_delta
        self._conn.execute(
            _ADD_USAGE,
            {
                "b_project": self._project_id,
                "b_bytes": bytes_delta,
                "b_count": count_delta,
                "b_now": datetime.now(UTC),
            },
        )

    def put(self, path: str, *, size: int, md5: str, uploader_id: int | None) -> ObjectInfo:
        """Index an object (replacing what was at its path) and update the project's usage."""
        existing, now = self.get(path), datetime.now(UTC)
        values = {"size": size, "md5": md5, "uploader_id": uploader_id, "created_at": now}
        if existing is None:
            self._conn.execute(_INSERT_OBJECT, {"project_id": self._project_id, "path": path, **values})
            self._add_usage(size, 1)
        else:
            self._conn.execute(_UPDATE_OBJECT.values(**values), self._where(path))
            self._add_usage(size - existing.size, 0)
        info = ObjectInfo(project_id=self._project_id, path=path, size=size, md5=md5, created_at=now)
        self._seen[path] = info
        return info

    def remove(self, path: str) -> bool:
        existing = self.get(path)
        if existing is None:
            return False
        self._conn.execute(_DELETE_OBJECT, self._where(path))
        self._add_usage(-existing.size, -1)
        self._seen[path] = None
        return True


class ObjectIndex:
    """Read and write access to the index; writes to one project are serialised."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(reader=True)
        self._writer = engine.execution_options(writer=True)
        objects = _OBJECTS.c
        # One probe answers both "is the project being deleted?" and "is the object there?": HEAD and GET
        # of every object run it, hits and misses alike (DVC's existence checks are mostly misses).
        self._get_object = PreparedQuery(
            engine,
            select(_P.path, _P.state, objects.size, objects.md5, objects.created_at)
            .select_from(
                _PROJECTS.outerjoin(
                    _OBJECTS, and_(objects.project_id == _P.id, objects.path == bindparam("path"))
                )
            )
            .where(_P.id == bindparam("project_id")),
        )

    def get(self, project_id: int, path: str) -> ObjectInfo | None:
        """The indexed object at a path, None when absent; ProjectDeleted for a project being deleted
        (errors: PreparedQuery)."""
        row = self._get_object.first(project_id=project_id, path=path)
        if row is None:
            return None  # the project has never stored anything
        project_path, state, size, md5, created = row
        if state != ACTIVE:
            raise ProjectDeleted(DELETED_MESSAGE.format(project_path))
        if size is None:
            return None
        return ObjectInfo(project_id=project_id, path=path, size=size, md5=md5, created_at=utc(created))

    def project_usage(self, project_id: int) -> tuple[int, int]:
        """(bytes used, object count) of a project; zeros when it has no data."""
        with database_errors(), Session(self._engine) as session:
            row = session.get(ProjectRow, project_id)
            return (row.used_bytes, row.object_count) if row else (0, 0)

    def project_quota(self, project_id: int) -> tuple[int, int | None]:
        """(bytes used, the project's own quota or None for the default); ProjectDeleted for a project
        being deleted."""
        with database_errors(), self._reader.connect() as conn:
            row = conn.execute(
                select(_P.path, _P.state, _P.used_bytes, _P.quota_bytes).where(_P.id == project_id)
            ).first()
        if row is not None and row.state != ACTIVE:
            raise ProjectDeleted(DELETED_MESSAGE.format(row.path))
        return (row.used_bytes, row.quota_bytes) if row else (0, None)

    def require_active(self, project: Project) -> None:
        """ProjectDeleted when the project is being (or was) deleted."""
        with database_errors(), self._reader.connect() as conn:
            state = conn.execute(select(_P.state).where(_P.id == project.id)).scalar()
        if state is not None and state != ACTIVE:
            raise ProjectDeleted(DELETED_MESSAGE.format(project.path))

    def set_quota(self, project_id: int, quota_bytes: int | None) -> None:
        """Give a project its own quota (None: back to the default); the project needs no data yet."""
        now = datetime.now(UTC)
        row = {
            "id": project_id,
            "path": f"project {project_id}",
            "state": "active",
            "used_bytes": 0,
            "object_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        with database_errors(), self._writer.begin() as conn:
            insert_if_absent(conn, _PROJECTS, "id", row)
            conn.execute(update(_PROJECTS).where(_P.id == project_id).values(quota_bytes=quota_bytes))

    def usage_table(self, limit: int = 1000) -> list[tuple[int, str, int, int, int | None]]:
        """(id, path, bytes used, object count, own quota) of the projects using the most storage."""
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(_P.id, _P.path, _P.used_bytes, _P.object_count, _P.quota_bytes)
                .order_by(_P.used_bytes.desc(), _P.id)
                .limit(limit)
            ).all()
        return [(r.id, r.path, r.used_bytes, r.object_count, r.quota_bytes) for r in rows]

    def project_summary(self, project_id: int) -> tuple[str, int, int, int | None] | None:
        """(path, bytes used, object count, own quota) of a project the index knows, else None."""
        with database_errors(), self._reader.connect() as conn:
            row = conn.execute(
                select(_P.path, _P.used_bytes, _P.object_count, _P.quota_bytes).where(_P.id == project_id)
            ).first()
        return (row.path, row.used_bytes, row.object_count, row.quota_bytes) if row else None

    @contextmanager
    def writing(self, project: Project) -> Iterator[ProjectWrite]:
        """A transaction that locks the project (creating its row on first write) and commits on exit."""
        lock = (_LOCK_PROJECT, {"b_project": project.id})
        with database_errors(), self._writer.begin() as conn:
            locked = conn.execute(*lock).first()
            if locked is None:
                now = datetime.now(UTC)
                row = {
                    "id": project.id,
                    "path": project.path,
                    "state": "active",
                    "used_bytes": 0,
                    "object_count": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                insert_if_absent(conn, _PROJECTS, "id", row)
                locked = conn.execute(*lock).one()
            if locked.state != ACTIVE:
                raise ProjectDeleted(DELETED_MESSAGE.format(project.path))
            if locked.path != project.path:
                conn.execute(update(_PROJECTS).where(_PROJECTS.c.id == project.id).values(path=project.path))
            yield ProjectWrite(conn, project.id, used_bytes=locked.used_bytes, quota_bytes=locked.quota_bytes)

    def check(self) -> None:
        """Raise when the database cannot be queried."""
        with database_errors(), Session(self._engine) as session:
            session.execute(select(1))

    def last_upload(self, project_id: int) -> datetime | None:
        """When the project's newest object was stored."""
        with database_errors(), self._reader.connect() as conn:
            newest = conn.execute(select(func.max(_O.created_at)).where(_O.project_id == project_id)).scalar()
        return utc(newest) if newest else None

    def page(
        self,
        project_id: int,
        *,
        prefix: str,
        search: str,
        limit: int,
        order_by: str = "path",
        descending: bool = False,
        after: tuple[Any, str] | None = None,
    ) -> list[ObjectInfo]:
        """Up to limit objects under prefix whose path contains search, ordered by `order_by` (path, size
        or created_at; ties by path) and starting after the key (value, path) of the previous page's last."""
        column = {"path": _O.path, "size": _O.size, "created_at": _O.created_at}[order_by]
        conditions = [_O.project_id == project_id, _O.path.startswith(prefix, autoescape=True)]
        if search:
            conditions.append(_O.path.contains(search, autoescape=True))
        if after is not None:
            key = _O.path if order_by == "path" else tuple_(column, _O.path)
            bound = (
                after[1] if order_by == "path" else tuple_(literal(after[0], column.type), literal(after[1]))
            )
            conditions.append(key < bound if descending else key > bound)
        order = [column.desc(), _O.path.desc()] if descending else [column, _O.path]
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(_O.path, _O.size, _O.md5, _O.created_at)
                .where(*conditions)
                .order_by(*order[: 1 if order_by == "path" else 2])
                .limit(limit)
            ).all()
        return [ObjectInfo(project_id, r.path, r.size, r.md5, utc(r.created_at)) for r in rows]

    def _present(self, project_id: int, column: Any, values: list[str]) -> set[str]:
        """Those of the values that some object of the project has in column; IN lists of 500."""
        found: set[str] = set()
        with database_errors(), self._reader.connect() as conn:
            for start in range(0, len(values), 500):
                batch = values[start : start + 500]
                query = select(column).where(_O.project_id == project_id, column.in_(batch)).distinct()
                found.update(conn.execute(query).scalars())
        return found

    def present_md5s(self, project_id: int, md5s: list[str]) -> set[str]:
        """Those of the md5s that some object of the project has."""
        return self._present(project_id, _O.md5, md5s)

    def missing(self, project_id: int, paths: list[str]) -> list[str]:
        """Those of the paths that have no object in the project, in the order given."""
        present = self._present(project_id, _O.path, paths)
        return [path for path in paths if path not in present]

    def children(self, project_id: int, prefix: str) -> Iterator[tuple[str, ObjectInfo | None]]:
        """The immediate children of a collection prefix ("" or ending in "/"), in path order: (name,
        object) for objects, (name, None) for sub-collections. Streams in pages and skips over each
        sub-collection with one query, so a 100,000-object prefix never sits in memory."""
        # "0" follows "/" in byte order: "<prefix><name>0" is the first path after the whole <name>/ subtree.
        cursor, inclusive, page = prefix, False, 500
        while True:
            after = _O.path >= cursor if inclusive else _O.path > cursor
            with database_errors(), self._reader.connect() as conn:
                rows = conn.execute(
                    select(_O.path, _O.size, _O.md5, _O.created_at)
                    .where(
                        _O.project_id == project_id,
                        after,
                        _O.path.startswith(prefix, autoescape=True),
                    )
                    .order_by(_O.path)
                    .limit(page)
                ).all()
            if not rows:
                return
            for path, size, md5, created in rows:
                name, slash, _ = path[len(prefix) :].partition("/")
                if slash:
                    yield name, None
                    cursor, inclusive = prefix + name + "0", True
                    break  # the rest of this page is inside that sub-collection
                yield name, ObjectInfo(project_id, path, size, md5, utc(created))
                cursor, inclusive = path, False
            else:
                if len(rows) < page:
                    return

    def has_prefix(self, project_id: int, prefix: str) -> bool:
        """Whether any object's path starts with prefix."""
        with database_errors(), self._reader.connect() as conn:
            return (
                conn.execute(
                    select(_O.id)
                    .where(_O.project_id == project_id, _O.path.startswith(prefix, autoescape=True))
                    .limit(1)
                ).first()
                is not None
            )

    def recount(self, project_id: int) -> tuple[int, int]:
        """Set the project's usage totals from its index rows; returns (bytes used, object count)."""
        totals = select(func.coalesce(func.sum(_O.size), 0), func.count()).where(_O.project_id == project_id)
        with database_errors(), self._writer.begin() as conn:
            used, count = conn.execute(totals).one()
            conn.execute(
                update(_PROJECTS)
                .where(_P.id == project_id)
                .values(used_bytes=used, object_count=count, updated_at=datetime.now(UTC))
            )
        return int(used), int(count)

    def find(self, project_id: int, *, prefix: str, suffix: str = "") -> Iterator[ObjectInfo]:
        """A project's objects whose path starts with prefix and ends with suffix, paged by id."""
        last_id, page = 0, 500
        while True:
            with database_errors(), Session(self._engine) as session:
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
