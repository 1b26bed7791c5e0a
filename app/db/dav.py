"""WebDAV state in the index: collections made with MKCOL, dead properties (PROPPATCH) and the
modification times clients give, each looked up by path or, for a listing, by parent collection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db.models import Base
from app.db.projects import insert_project
from app.db.sql import PreparedQuery, database_errors, under, utc
from app.model.projects import Project

_COLLECTIONS = Base.metadata.tables["dav_collections"]
_PROPERTIES = Base.metadata.tables["dav_properties"]
_MTIMES = Base.metadata.tables["dav_mtimes"]
_C, _PR, _M = _COLLECTIONS.c, _PROPERTIES.c, _MTIMES.c
DeadProperty = tuple[str, str, str]  # (namespace, name, value as XML text)
Mtime = tuple[datetime, datetime | None]  # (modified, the object version it is for; None: a collection)


def parent_of(path: str) -> str:
    """The collection a path is in ("" at the data root)."""
    return path.rpartition("/")[0]


def _upsert(
    conn: Connection, table: Table, keys: Sequence[str], values: dict[str, Any], *, update: bool
) -> None:
    """INSERT, or on a key clash nothing (update=False) or the new values (update=True), on both databases."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(table).values(**values)
    changed = {k: v for k, v in values.items() if k not in keys}
    if update and changed:
        conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changed))
    else:
        conn.execute(statement.on_conflict_do_nothing(index_elements=list(keys)))


class DavStore:
    """Collections, dead properties and mtimes of the projects' paths."""

    def __init__(self, engine: Engine) -> None:
        self._reader = engine.execution_options(reader=True)
        self._writer = engine.execution_options(writer=True)
        # The reads every PROPFIND makes (DVC's webdav remote sends thousands), compiled once and run on
        # each thread's own connection (app.db.sql.PreparedQuery): a listing of DVC's `files/md5` must not
        # cost much more than it did before collections, properties and mtimes existed.
        project: Any = bindparam("project_id")
        path: Any = bindparam("path")
        parent: Any = bindparam("parent")
        self._collection = PreparedQuery(
            engine, select(_C.path).where(_C.project_id == project, _C.path == path)
        )
        self._collections_in = PreparedQuery(
            engine, select(_C.path).where(_C.project_id == project, _C.parent == parent)
        )
        self._properties = PreparedQuery(
            engine,
            select(_PR.namespace, _PR.name, _PR.value)
            .where(_PR.project_id == project, _PR.path == path)
            .order_by(_PR.namespace, _PR.name),
        )
        self._properties_in = PreparedQuery(
            engine,
            select(_PR.path, _PR.namespace, _PR.name, _PR.value).where(
                _PR.project_id == project, _PR.parent == parent
            ),
        )
        self._mtime = PreparedQuery(
            engine, select(_M.modified_at, _M.version_at).where(_M.project_id == project, _M.path == path)
        )
        self._mtimes_in = PreparedQuery(
            engine,
            select(_M.path, _M.modified_at, _M.version_at).where(
                _M.project_id == project, _M.parent == parent
            ),
        )

    # collections

    def is_collection(self, project_id: int, path: str) -> bool:
        """Whether MKCOL made a collection at path."""
        return self._collection.first(project_id=project_id, path=path) is not None

    def collections_in(self, project_id: int, parent: str) -> list[str]:
        """The names of the collections MKCOL made directly in `parent`, sorted."""
        rows = self._collections_in.all(project_id=project_id, parent=parent)
        return sorted(path.rpartition("/")[2] for (path,) in rows)

    def make_collections(self, project: Project, paths: Iterable[str]) -> None:
        """Keep collections at paths (those already kept stay as they are)."""
        now = datetime.now(UTC)
        with database_errors(), self._writer.begin() as conn:
            insert_project(conn, project.id, project.path)
            for path in paths:
                row = {"project_id": project.id, "path": path, "parent": parent_of(path), "created_at": now}
                _upsert(conn, _COLLECTIONS, ("project_id", "path"), row, update=False)

    def remove(
        self, project_id: int, paths: Sequence[str], *, under_too: bool, mtimes_only: bool = False
    ) -> None:
        """Forget the paths (collections, properties, mtimes; or only mtimes) and, with under_too,
        everything below them ("" : the whole project)."""
        if not paths:
            return
        with database_errors(), self._writer.begin() as conn:
            for table in (_MTIMES,) if mtimes_only else (_COLLECTIONS, _PROPERTIES, _MTIMES):
                for start in range(0, len(paths), 500):
                    batch = paths[start : start + 500]
                    where = [table.c.path.in_(batch)]
                    if under_too:
                        where += [under(table.c.path, f"{p}/" if p else "") for p in batch]
                    conn.execute(delete(table).where(table.c.project_id == project_id, or_(*where)))

    # dead properties

    def properties(self, project_id: int, path: str) -> list[DeadProperty]:
        """The dead properties of path, by namespace and name."""
        return [
            (ns, name, value) for ns, name, value in self._properties.all(project_id=project_id, path=path)
        ]

    def properties_in(self, project_id: int, parent: str) -> dict[str, list[DeadProperty]]:
        """The dead properties of everything directly in `parent`, by name (one query for a listing)."""
        found: dict[str, list[DeadProperty]] = {}
        for path, namespace, name, value in self._properties_in.all(project_id=project_id, parent=parent):
            found.setdefault(path.rpartition("/")[2], []).append((namespace, name, value))
        return found

    def patch(
        self, project: Project, path: str, changes: Sequence[tuple[str, str, str | None]], *, limit: int
    ) -> bool:
        """Set (value) or remove (None) dead properties in order, in one transaction; False, and nothing
        changed, when the path's properties would then hold more than `limit` characters."""
        keys = ("project_id", "path", "namespace", "name")
        with database_errors(), self._writer.begin() as conn:
            insert_project(conn, project.id, project.path)
            for namespace, name, value in changes:
                where = (_PR.project_id == project.id, _PR.path == path)
                if value is None:
                    conn.execute(
                        delete(_PROPERTIES).where(*where, _PR.namespace == namespace, _PR.name == name)
                    )
                    continue
                row = {
                    "project_id": project.id,
                    "path": path,
                    "namespace": namespace,
                    "name": name,
                    "parent": parent_of(path),
                    "value": value,
                }
                _upsert(conn, _PROPERTIES, keys, row, update=True)
            held = conn.execute(select(_PR.value).where(_PR.project_id == project.id, _PR.path == path))
            if sum(len(v) for v in held.scalars()) > limit:
                conn.rollback()
                return False
        return True

    # modification times

    def set_mtime(self, project_id: int, path: str, modified: datetime, version_at: datetime | None) -> None:
        """Keep the modification time a client gave path (for that object version, None: a collection)."""
        row = {
            "project_id": project_id,
            "path": path,
            "parent": parent_of(path),
            "modified_at": modified,
            "version_at": version_at,
        }
        with database_errors(), self._writer.begin() as conn:
            insert_project(conn, project_id, None)  # there already, unless a collection is the first thing
            _upsert(conn, _MTIMES, ("project_id", "path"), row, update=True)

    def mtime(self, project_id: int, path: str) -> Mtime | None:
        """The modification time given to path, and the version it is for."""
        row = self._mtime.first(project_id=project_id, path=path)
        return None if row is None else (utc(row[0]), None if row[1] is None else utc(row[1]))

    def mtimes_in(self, project_id: int, parent: str) -> dict[str, Mtime]:
        """The modification times given to everything directly in `parent`, by name."""
        return {
            path.rpartition("/")[2]: (utc(modified), None if version is None else utc(version))
            for path, modified, version in self._mtimes_in.all(project_id=project_id, parent=parent)
        }
