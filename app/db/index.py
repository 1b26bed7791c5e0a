"""The object index: look-ups for the data plane, listings, and per-project write transactions that keep
each project's record (usage, quota, state) current."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Engine, TextualSelect, and_, bindparam, func, literal, select, text, tuple_, update
from sqlalchemy.orm import Session

from app.db import head_revision
from app.db.dav import DavStore
from app.db.models import Base, ObjectRow
from app.db.project_write import ProjectWrite
from app.db.projects import PROJECTS, RECORD_COLUMNS, insert_project, record
from app.db.sql import (
    NOT_MIGRATED,
    CompiledStatement,
    PreparedQuery,
    database_errors,
    successor_of,
    under,
    utc,
)
from app.errors import DatabaseUnavailable
from app.model.objects import Listing, ObjectInfo
from app.model.projects import ACTIVE, Project, ProjectRecord

_OBJECTS = Base.metadata.tables["objects"]
_O, _P = _OBJECTS.c, PROJECTS.c
_LIVE = _O.trashed_at.is_(None)  # not in the trash: what DVC, listings and quotas see
_LOCK_PROJECT = CompiledStatement(
    select(*RECORD_COLUMNS).where(_P.id == bindparam("b_project")).with_for_update()
)
_TRASHED = _OBJECTS.alias("trashed")
# An upload's look-up before it takes the lock: the project's state, the live object at the path, and the
# size of one in the trash there (whose purge could delete the bytes under the path's own key).
_LIVE_AND_TRASHED = (
    select(
        _P.path,
        _P.state,
        _O.size,
        _O.md5,
        _O.created_at,
        _O.storage_key,
        select(func.max(_TRASHED.c.size))
        .where(
            _TRASHED.c.project_id == _P.id,
            _TRASHED.c.path == bindparam("path"),
            _TRASHED.c.trashed_at.is_not(None),
        )
        .scalar_subquery(),
    )
    .select_from(
        PROJECTS.outerjoin(_OBJECTS, and_(_O.project_id == _P.id, _O.path == bindparam("path"), _LIVE))
    )
    .where(_P.id == bindparam("project_id"))
)


def _info(row: ObjectRow) -> ObjectInfo:
    return ObjectInfo(
        project_id=row.project_id,
        path=row.path,
        size=row.size,
        md5=row.md5,
        created_at=utc(row.created_at),
        trashed_at=None if row.trashed_at is None else utc(row.trashed_at),
        storage_key=row.storage_key,
    )


class ObjectIndex:
    """Read and write access to the index; writes to one project are serialised."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reader = engine.execution_options(reader=True)
        self._writer = engine.execution_options(writer=True)
        self.dav = DavStore(engine)  # WebDAV collections, dead properties and mtimes by path
        objects = _OBJECTS.c
        # One probe answers both "is the project being deleted?" and "is the object there?": HEAD and GET
        # of every object run it, hits and misses alike (DVC's existence checks are mostly misses).
        self._get_object = PreparedQuery(
            engine,
            select(_P.path, _P.state, objects.size, objects.md5, objects.created_at, objects.storage_key)
            .select_from(
                PROJECTS.outerjoin(
                    _OBJECTS,
                    and_(objects.project_id == _P.id, objects.path == bindparam("path"), _LIVE),
                )
            )
            .where(_P.id == bindparam("project_id")),
        )
        # every upload reads its project's record (quota, state) before it takes the lock
        self._project = PreparedQuery(engine, select(*RECORD_COLUMNS).where(_P.id == bindparam("project_id")))
        self._trashed_object = PreparedQuery(
            engine,
            select(objects.size).where(
                objects.project_id == bindparam("project_id"),
                objects.path == bindparam("path"),
                objects.trashed_at.is_not(None),
            ),
        )
        self._versions = PreparedQuery(engine, _LIVE_AND_TRASHED)

    def trashed_size(self, project_id: int, path: str) -> int | None:
        """The size of the object at path when it is in the project's trash, else None."""
        row = self._trashed_object.first(project_id=project_id, path=path)
        return None if row is None else int(row[0])

    def lookup(self, project_id: int, path: str) -> tuple[ObjectInfo | None, int | None]:
        """The live object at a path (None: none) and the size of one in the project's trash there
        (None: none), in one query; ProjectDeleted for a project being deleted."""
        row = self._versions.first(project_id=project_id, path=path)
        if row is None:
            return None, None  # the project has never stored anything
        project_path, state, size, md5, created, key, trashed = row
        if state != ACTIVE:
            ProjectRecord(project_id, project_path, state).require_active()
        live = (
            None if size is None else ObjectInfo(project_id, path, size, md5, utc(created), storage_key=key)
        )
        return live, None if trashed is None else int(trashed)

    def get(self, project_id: int, path: str) -> ObjectInfo | None:
        """The indexed object at a path, None when absent; ProjectDeleted for a project being deleted
        (errors: PreparedQuery)."""
        row = self._get_object.first(project_id=project_id, path=path)
        if row is None:
            return None  # the project has never stored anything
        project_path, state, size, md5, created, key = row
        if state != ACTIVE:
            ProjectRecord(project_id, project_path, state).require_active()
        if size is None:
            return None
        return ObjectInfo(
            project_id=project_id, path=path, size=size, md5=md5, created_at=utc(created), storage_key=key
        )

    def project(self, project_id: int) -> ProjectRecord | None:
        """The project's record, None when the index has never seen it."""
        row = self._project.first(project_id=project_id)
        return None if row is None else record(row)

    def record_of(self, project: Project) -> ProjectRecord:
        """The project's record under GitLab's current path; an empty one when the index has never seen
        it."""
        known = self.project(project.id) or ProjectRecord(project.id, project.path)
        return replace(known, path=project.path)

    def require_active(self, project: Project) -> None:
        """ProjectDeleted when the project is being (or was) deleted."""
        with database_errors(), self._reader.connect() as conn:
            state = conn.execute(select(_P.state).where(_P.id == project.id)).scalar()
        if state is not None:
            ProjectRecord(project.id, project.path, state).require_active()

    def set_quota(self, project_id: int, quota_bytes: int | None) -> None:
        """Give a project its own quota (None: back to the default); the project needs no data yet."""
        with database_errors(), self._writer.begin() as conn:
            insert_project(conn, project_id, None)
            conn.execute(update(PROJECTS).where(_P.id == project_id).values(quota_bytes=quota_bytes))

    def projects_by_usage(self, limit: int = 1000) -> list[ProjectRecord]:
        """The projects using the most storage, most first."""
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(*RECORD_COLUMNS).order_by(_P.used_bytes.desc(), _P.id).limit(limit)
            ).all()
        return [record(row) for row in rows]

    @contextmanager
    def writing(self, project: Project) -> Iterator[ProjectWrite]:
        """A transaction that locks the project (creating its row on first write) and commits on exit;
        ProjectDeleted for a project being deleted."""
        with database_errors(), self._writer.begin() as conn:
            rows = _LOCK_PROJECT.run(conn, b_project=project.id)
            if not rows:
                insert_project(conn, project.id, project.path)
                rows = _LOCK_PROJECT.run(conn, b_project=project.id)
            locked = rows[0]
            current = replace(record(locked), path=project.path)  # GitLab's path is the news
            current.require_active()
            if locked[1] != project.path:
                conn.execute(update(PROJECTS).where(_P.id == project.id).values(path=project.path))
            yield ProjectWrite(conn, current)

    def check(self) -> None:
        """Raise when the database cannot be queried or is not at the newest migration."""
        with database_errors(), self._reader.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if version != head_revision():
            raise DatabaseUnavailable(f"{NOT_MIGRATED} (it is at {version or 'no revision'})")

    def last_upload(self, project_id: int) -> datetime | None:
        """When the project's newest object was stored."""
        with database_errors(), self._reader.connect() as conn:
            newest = conn.execute(
                select(func.max(_O.created_at)).where(_O.project_id == project_id, _LIVE)
            ).scalar()
        return utc(newest) if newest else None

    def page(self, project_id: int, listing: Listing) -> list[ObjectInfo]:
        """The page of the project's objects (or of its trash) a listing asks for."""
        order_by, descending, after = listing.order_by, listing.descending, listing.after
        prefix, search = listing.prefix, listing.search
        column = {"path": _O.path, "size": _O.size, "created_at": _O.created_at}[order_by]
        conditions = [
            _O.project_id == project_id,
            under(_O.path, prefix),
            _O.trashed_at.is_not(None) if listing.trashed else _LIVE,
        ]
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
                select(_O.path, _O.size, _O.md5, _O.created_at, _O.trashed_at, _O.storage_key)
                .where(*conditions)
                .order_by(*order[: 1 if order_by == "path" else 2])
                .limit(listing.limit)
            ).all()
        return [
            ObjectInfo(
                project_id,
                r.path,
                r.size,
                r.md5,
                utc(r.created_at),
                None if r.trashed_at is None else utc(r.trashed_at),
                r.storage_key,
            )
            for r in rows
        ]

    def _present(self, project_id: int, column: Any, values: list[str]) -> set[str]:
        """Those of the values that some object of the project has in column; IN lists of 500."""
        found: set[str] = set()
        with database_errors(), self._reader.connect() as conn:
            for start in range(0, len(values), 500):
                batch = values[start : start + 500]
                query = select(column).where(_O.project_id == project_id, column.in_(batch), _LIVE).distinct()
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
        object) for objects, (name, None) for sub-collections. A skip scan: one index seek per child,
        a page of children per query, so a listing costs O(its children) whatever lies below them (DVC's
        `files/md5`: 256 seeks, however many objects), and memory stays bounded."""
        query = _children_query(self._engine.dialect.name, bounded=successor_of(prefix) is not None)
        start, page = prefix, 500
        while True:
            with database_errors(), self._reader.connect() as conn:
                rows = conn.execute(
                    query,
                    {
                        "project": project_id,
                        "start": start,
                        "end": successor_of(prefix),
                        "skip": len(prefix),
                        "page": page,
                    },
                ).all()
            for path, size, md5, created in rows:
                name, slash, _ = path[len(prefix) :].partition("/")
                yield name, None if slash else ObjectInfo(project_id, path, size, md5, utc(created))
            if len(rows) < page:
                return
            start = _next_child(prefix, rows[-1].path)

    def expired_trash(self, project_id: int, before: datetime, limit: int) -> list[str]:
        """Paths of up to `limit` of the project's objects trashed before `before`."""
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(_O.path).where(_O.project_id == project_id, _O.trashed_at < before).limit(limit)
            ).scalars()
            return list(rows)

    def has_prefix(self, project_id: int, prefix: str) -> bool:
        """Whether any object's path starts with prefix."""
        with database_errors(), self._reader.connect() as conn:
            return (
                conn.execute(
                    select(_O.id).where(_O.project_id == project_id, under(_O.path, prefix), _LIVE).limit(1)
                ).first()
                is not None
            )

    def recount(self, project_id: int) -> tuple[int, int]:
        """Set the project's usage and trash totals from its index rows; returns (bytes used, objects)."""
        totals = select(func.coalesce(func.sum(_O.size), 0), func.count()).where(_O.project_id == project_id)
        with database_errors(), self._writer.begin() as conn:
            used, count = conn.execute(totals.where(_LIVE)).one()
            trash_bytes, trash_count = conn.execute(totals.where(_O.trashed_at.is_not(None))).one()
            conn.execute(
                update(PROJECTS)
                .where(_P.id == project_id)
                .values(
                    used_bytes=used,
                    object_count=count,
                    trash_bytes=trash_bytes,
                    trash_count=trash_count,
                    updated_at=datetime.now(UTC),
                )
            )
        return int(used), int(count)

    def find(
        self, project_id: int, *, prefix: str, suffix: str = "", trashed: bool | None = False
    ) -> Iterator[ObjectInfo]:
        """A project's objects whose path starts with prefix and ends with suffix, paged by id: the live
        ones, those in the trash (trashed=True), or both (None)."""
        last_id, page = 0, 500
        state = [] if trashed is None else [ObjectRow.trashed_at.is_not(None) if trashed else _LIVE]
        while True:
            with database_errors(), Session(self._engine) as session:
                rows = session.scalars(
                    select(ObjectRow)
                    .where(
                        ObjectRow.project_id == project_id,
                        under(ObjectRow.path, prefix),
                        ObjectRow.path.endswith(suffix, autoescape=True),
                        ObjectRow.id > last_id,
                        *state,
                    )
                    .order_by(ObjectRow.id)
                    .limit(page)
                ).all()
            yield from (_info(row) for row in rows)
            if len(rows) < page:
                return
            last_id = rows[-1].id


def _next_child(prefix: str, path: str) -> str:
    """The smallest path that can belong to the child after the one `path` is in: past the whole
    sub-collection ("0" follows "/"), or past the object itself (paths hold no control characters, so
    none lies between `path` and `path + " "`)."""
    name, slash, _ = path[len(prefix) :].partition("/")
    return prefix + name + "0" if slash else path + " "


@cache
def _children_query(dialect: str, *, bounded: bool) -> TextualSelect:
    """The skip scan `children` runs: a recursive query whose every step is one index seek to the first
    live path at or after the previous child's `_next_child`, at most :page steps."""
    find = "strpos" if dialect == "postgresql" else "instr"  # position of "/" in the rest, 1-based; 0: none
    rest = "substr(steps.path, :skip + 1)"
    following = (
        f"CASE WHEN {find}({rest}, '/') > 0"
        f" THEN substr(steps.path, 1, :skip + {find}({rest}, '/') - 1) || '0'"
        " ELSE steps.path || ' ' END"
    )
    # Only the constant fragments here are composed; every value is a bound parameter.
    end = " AND o.path < :end" if bounded else ""
    first_live = (
        "SELECT o.path FROM objects AS o WHERE o.project_id = :project AND o.path >= {at}"  # noqa: S608
        + end
        + " AND o.trashed_at IS NULL ORDER BY o.path LIMIT 1"
    )
    return text(
        "WITH RECURSIVE steps(path, n) AS ("  # noqa: S608
        f" SELECT ({first_live.format(at=':start')}), 1"
        f" UNION ALL SELECT ({first_live.format(at=following)}), steps.n + 1"
        " FROM steps WHERE steps.path IS NOT NULL AND steps.n < :page)"
        " SELECT o.path, o.size, o.md5, o.created_at FROM steps"
        " JOIN objects AS o ON o.project_id = :project AND o.path = steps.path AND o.trashed_at IS NULL"
        " ORDER BY steps.n"
    ).columns(_O.path, _O.size, _O.md5, _O.created_at)
