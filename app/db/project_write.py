"""One write transaction on one project's objects, holding the project's write lock until it ends."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from app.db.models import Base
from app.db.projects import PROJECTS
from app.db.sql import utc
from app.db.upload_sessions import reserved
from app.model import ObjectInfo, ProjectRecord

_OBJECTS = Base.metadata.tables["objects"]
_O, _P = _OBJECTS.c, PROJECTS.c
# Statements built once (every upload runs them); bind names avoid column names, which Core reserves.
_THIS_OBJECT = (_O.project_id == bindparam("b_project"), _O.path == bindparam("b_path"))
_SELECT_OBJECT = select(_O.size, _O.md5, _O.created_at).where(*_THIS_OBJECT)
_INSERT_OBJECT = insert(_OBJECTS)
_UPDATE_OBJECT = update(_OBJECTS).where(*_THIS_OBJECT)
_DELETE_OBJECT = delete(_OBJECTS).where(*_THIS_OBJECT)
_ADD_USAGE = (
    update(PROJECTS)
    .where(_P.id == bindparam("b_project"))
    .values(
        used_bytes=_P.used_bytes + bindparam("b_bytes"),
        object_count=_P.object_count + bindparam("b_count"),
        updated_at=bindparam("b_now"),
    )
)


class ProjectWrite:
    """Core statements (no ORM): an upload's index work is a handful of single-row statements."""

    def __init__(self, conn: Connection, project: ProjectRecord) -> None:
        self._conn = conn
        self._seen: dict[str, ObjectInfo | None] = {}
        self.project = project  # as of this transaction, usage kept current by put and remove

    def _where(self, path: str) -> dict[str, Any]:
        return {"b_project": self.project.id, "b_path": path}

    def get(self, path: str) -> ObjectInfo | None:
        """The object at path as this transaction sees it."""
        if path not in self._seen:
            row = self._conn.execute(_SELECT_OBJECT, self._where(path)).first()
            self._seen[path] = (
                None
                if row is None
                else ObjectInfo(self.project.id, path, row.size, row.md5, utc(row.created_at))
            )
        return self._seen[path]

    def _add_usage(self, bytes_delta: int, count_delta: int) -> None:
        self.project = replace(
            self.project,
            used_bytes=self.project.used_bytes + bytes_delta,
            object_count=self.project.object_count + count_delta,
        )
        params = {"b_bytes": bytes_delta, "b_count": count_delta, "b_now": datetime.now(UTC)}
        self._conn.execute(_ADD_USAGE, {"b_project": self.project.id, **params})

    def put(self, path: str, *, size: int, md5: str, uploader_id: int | None) -> ObjectInfo:
        """Index an object (replacing what was at its path) and update the project's usage."""
        existing, now = self.get(path), datetime.now(UTC)
        values = {"size": size, "md5": md5, "uploader_id": uploader_id, "created_at": now}
        if existing is None:
            self._conn.execute(_INSERT_OBJECT, {"project_id": self.project.id, "path": path, **values})
            self._add_usage(size, 1)
        else:
            self._conn.execute(_UPDATE_OBJECT.values(**values), self._where(path))
            self._add_usage(size - existing.size, 0)
        info = ObjectInfo(project_id=self.project.id, path=path, size=size, md5=md5, created_at=now)
        self._seen[path] = info
        return info

    def reserved(self, *, besides: str | None = None) -> int:
        """Room the project's open direct uploads hold (read on this transaction's connection: another
        one could wait for a pool that every writer waiting for this lock holds)."""
        return reserved(self._conn, self.project.id, datetime.now(UTC), besides=besides)

    def remove(self, path: str) -> bool:
        """Drop the object's row and its usage; False when there was none."""
        existing = self.get(path)
        if existing is None:
            return False
        self._conn.execute(_DELETE_OBJECT, self._where(path))
        self._add_usage(-existing.size, -1)
        self._seen[path] = None
        return True
