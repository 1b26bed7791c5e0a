"""One write transaction on one project's objects, holding the project's write lock until it ends: puts,
removals, moves to and from the trash, each keeping the project's usage and trash totals current."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, func, insert, select, update

from app.db.models import Base
from app.db.projects import PROJECTS
from app.db.sql import utc
from app.db.upload_sessions import reserved
from app.model.objects import ObjectInfo
from app.model.projects import ProjectRecord

_OBJECTS = Base.metadata.tables["objects"]
_O, _P = _OBJECTS.c, PROJECTS.c
# Statements built once (every upload runs them); bind names avoid column names, which Core reserves.
_THIS_OBJECT = (_O.project_id == bindparam("b_project"), _O.path == bindparam("b_path"))
_SELECT_OBJECT = select(_O.size, _O.md5, _O.created_at, _O.trashed_at, _O.storage_key).where(*_THIS_OBJECT)
_INSERT_OBJECT = insert(_OBJECTS)
_UPDATE_OBJECT = update(_OBJECTS).where(*_THIS_OBJECT)
_DELETE_OBJECT = delete(_OBJECTS).where(*_THIS_OBJECT)
_IN_LIST = 500  # paths per IN list
_ADD_USAGE = (
    update(PROJECTS)
    .where(_P.id == bindparam("b_project"))
    .values(
        used_bytes=_P.used_bytes + bindparam("b_bytes"),
        object_count=_P.object_count + bindparam("b_count"),
        trash_bytes=_P.trash_bytes + bindparam("b_trash_bytes"),
        trash_count=_P.trash_count + bindparam("b_trash_count"),
        updated_at=bindparam("b_now"),
    )
)


class ProjectWrite:
    """Core statements (no ORM): an upload's index work is a handful of single-row statements."""

    def __init__(self, conn: Connection, project: ProjectRecord) -> None:
        self._conn = conn
        self._seen: dict[str, ObjectInfo | None] = {}  # the row at a path, live or trashed
        self.project = project  # as of this transaction, totals kept current by every change

    def _where(self, path: str) -> dict[str, Any]:
        return {"b_project": self.project.id, "b_path": path}

    def _row(self, path: str) -> ObjectInfo | None:
        if path not in self._seen:
            row = self._conn.execute(_SELECT_OBJECT, self._where(path)).first()
            self._seen[path] = (
                None
                if row is None
                else ObjectInfo(
                    self.project.id,
                    path,
                    row.size,
                    row.md5,
                    utc(row.created_at),
                    None if row.trashed_at is None else utc(row.trashed_at),
                    row.storage_key,
                )
            )
        return self._seen[path]

    def get(self, path: str) -> ObjectInfo | None:
        """The live object at path as this transaction sees it (a trashed one is not)."""
        row = self._row(path)
        return row if row is not None and row.trashed_at is None else None

    def trashed(self, path: str) -> ObjectInfo | None:
        """The object at path when it is in the trash."""
        row = self._row(path)
        return row if row is not None and row.trashed_at is not None else None

    def _add(self, live: tuple[int, int] = (0, 0), trash: tuple[int, int] = (0, 0)) -> None:
        """Change the project's totals by (bytes, objects) live and in the trash."""
        self.project = replace(
            self.project,
            used_bytes=self.project.used_bytes + live[0],
            object_count=self.project.object_count + live[1],
            trash_bytes=self.project.trash_bytes + trash[0],
            trash_count=self.project.trash_count + trash[1],
        )
        params = {
            "b_bytes": live[0],
            "b_count": live[1],
            "b_trash_bytes": trash[0],
            "b_trash_count": trash[1],
            "b_now": datetime.now(UTC),
        }
        self._conn.execute(_ADD_USAGE, {"b_project": self.project.id, **params})

    def put(
        self, path: str, *, size: int, md5: str, uploader_id: int | None, storage_key: str | None = None
    ) -> ObjectInfo:
        """Index an object whose bytes are at `storage_key` (None: the path's own key), replacing what was
        at its path (a trashed object there is gone for good: the caller deletes its bytes, when they are
        at another key, once this transaction has committed)."""
        existing, now = self._row(path), datetime.now(UTC)
        values = {
            "size": size,
            "md5": md5,
            "uploader_id": uploader_id,
            "created_at": now,
            "trashed_at": None,
            "storage_key": storage_key,
        }
        if existing is None:
            self._conn.execute(_INSERT_OBJECT, {"project_id": self.project.id, "path": path, **values})
            self._add(live=(size, 1))
        else:
            self._conn.execute(_UPDATE_OBJECT.values(**values), self._where(path))
            if existing.trashed_at is None:
                self._add(live=(size - existing.size, 0))
            else:
                self._add(live=(size, 1), trash=(-existing.size, -1))
        info = ObjectInfo(self.project.id, path, size, md5, now, storage_key=storage_key)
        self._seen[path] = info
        return info

    def remove(self, path: str) -> bool:
        """Drop the row at path, live or trashed, and its share of the totals; False when there was none."""
        existing = self._row(path)
        if existing is None:
            return False
        self._conn.execute(_DELETE_OBJECT, self._where(path))
        if existing.trashed_at is None:
            self._add(live=(-existing.size, -1))
        else:
            self._add(trash=(-existing.size, -1))
        self._seen[path] = None
        return True

    def restore(self, path: str) -> ObjectInfo | None:
        """Bring the object at path back from the trash; None when it is not there."""
        existing = self.trashed(path)
        if existing is None:
            return None
        self._conn.execute(_UPDATE_OBJECT.values(trashed_at=None), self._where(path))
        self._add(live=(existing.size, 1), trash=(-existing.size, -1))
        self._seen[path] = restored = replace(existing, trashed_at=None)
        return restored

    def trash_many(self, paths: Sequence[str], when: datetime) -> int:
        """Move the live objects at paths to the trash in a few statements; returns how many moved."""
        moved = 0
        for start in range(0, len(paths), _IN_LIST):
            live = self._among(paths[start : start + _IN_LIST], trashed=False)
            size, count = self._conn.execute(
                select(func.coalesce(func.sum(_O.size), 0), func.count()).where(live)
            ).one()
            self._conn.execute(update(_OBJECTS).where(live).values(trashed_at=when))
            self._add(live=(-size, -count), trash=(size, count))
            moved += count
        self._seen.clear()
        return moved

    def remove_many(
        self, paths: Sequence[str], *, trashed: bool = False, before: datetime | None = None
    ) -> dict[str, ObjectInfo]:
        """Drop the live (or trashed, and trashed before `before`) objects at paths in a few statements;
        returns each dropped object (their keys are the bytes to delete)."""
        dropped: dict[str, ObjectInfo] = {}
        for start in range(0, len(paths), _IN_LIST):
            rows = self._among(paths[start : start + _IN_LIST], trashed=trashed)
            if before is not None:
                rows = and_(rows, _O.trashed_at < before)
            found = self._conn.execute(
                select(_O.path, _O.size, _O.md5, _O.created_at, _O.storage_key).where(rows)
            ).all()
            self._conn.execute(delete(_OBJECTS).where(rows))
            size, count = sum(r.size for r in found), len(found)
            if trashed:
                self._add(trash=(-size, -count))
            else:
                self._add(live=(-size, -count))
            dropped.update(
                (
                    r.path,
                    ObjectInfo(self.project.id, r.path, r.size, r.md5, r.created_at, None, r.storage_key),
                )
                for r in found
            )
        self._seen.clear()
        return dropped

    def _among(self, paths: Sequence[str], *, trashed: bool) -> ColumnElement[bool]:
        state = _O.trashed_at.is_not(None) if trashed else _O.trashed_at.is_(None)
        return and_(_O.project_id == self.project.id, _O.path.in_(list(paths)), state)

    def reserved(self, *, besides: str | None = None) -> int:
        """Room the project's open direct uploads hold (read on this transaction's connection: another
        one could wait for a pool that every writer waiting for this lock holds)."""
        return reserved(self._conn, self.project.id, datetime.now(UTC), besides=besides)
