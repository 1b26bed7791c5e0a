"""One write transaction on one project's objects, holding the project's write lock until it ends: puts,
removals, moves to and from the trash, each keeping the project's usage and trash totals current. A path
has at most one live version and any number in the trash (replaced by a PUT, or deleted)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, func, insert, select, update

from app.db.models import Base
from app.db.projects import PROJECTS
from app.db.sql import CompiledStatement, utc
from app.db.upload_sessions import reserved
from app.model.objects import ObjectInfo
from app.model.projects import ProjectRecord

_OBJECTS = Base.metadata.tables["objects"]
_O, _P = _OBJECTS.c, PROJECTS.c
# The statements every upload runs, compiled once (CompiledStatement); bind names avoid column names,
# which Core reserves.
_THIS_ROW = _O.id == bindparam("b_id")
_SELECT_VERSIONS = CompiledStatement(  # live first, then the trash newest first
    select(_O.id, _O.size, _O.md5, _O.created_at, _O.trashed_at, _O.storage_key)
    .where(_O.project_id == bindparam("b_project"), _O.path == bindparam("b_path"))
    .order_by(_O.trashed_at.is_not(None), _O.trashed_at.desc(), _O.id.desc())
)
_VALUES = {  # an object's columns, each from the bind of its name with b_ before it
    name: bindparam(f"b_{name}", type_=_O[name].type)
    for name in ("size", "md5", "uploader_id", "created_at", "trashed_at", "storage_key")
}
_INSERT_OBJECT = CompiledStatement(  # inline: no RETURNING of the new id, which nothing reads
    insert(_OBJECTS)
    .inline()
    .values(
        project_id=bindparam("b_project", type_=_O.project_id.type),
        path=bindparam("b_path", type_=_O.path.type),
        **_VALUES,
    )
)
_REPLACE_ROW = CompiledStatement(update(_OBJECTS).where(_THIS_ROW).values(**_VALUES))
_SET_TRASHED = CompiledStatement(
    update(_OBJECTS).where(_THIS_ROW).values(trashed_at=bindparam("b_trashed_at", type_=_O.trashed_at.type))
)
_DELETE_ROW = CompiledStatement(delete(_OBJECTS).where(_THIS_ROW))
_IN_LIST = 500  # paths per IN list
_ADD_USAGE = CompiledStatement(
    update(PROJECTS)
    .where(_P.id == bindparam("b_project"))
    .values(
        used_bytes=_P.used_bytes + bindparam("b_bytes", type_=_P.used_bytes.type),
        object_count=_P.object_count + bindparam("b_count", type_=_P.object_count.type),
        trash_bytes=_P.trash_bytes + bindparam("b_trash_bytes", type_=_P.trash_bytes.type),
        trash_count=_P.trash_count + bindparam("b_trash_count", type_=_P.trash_count.type),
        updated_at=bindparam("b_now", type_=_P.updated_at.type),
    )
)


class ProjectWrite:
    """An upload's index work: a handful of single-row statements, compiled once (bulk ones: Core)."""

    def __init__(self, conn: Connection, project: ProjectRecord) -> None:
        self._conn = conn
        # the rows at a path (with their ids) as this transaction sees them: the live one first
        self._seen: dict[str, list[tuple[int, ObjectInfo]]] = {}
        self.project = project  # as of this transaction, totals kept current by every change
        # keys no row points to any more (a replaced version not kept): the caller deletes their bytes
        # once this transaction has committed
        self.released: list[str] = []

    def _rows(self, path: str) -> list[tuple[int, ObjectInfo]]:
        """Every row at path in one query (an upload's lookups and its put share it)."""
        if path not in self._seen:
            rows = _SELECT_VERSIONS.run(self._conn, b_project=self.project.id, b_path=path)
            self._seen[path] = [
                (
                    row_id,
                    ObjectInfo(
                        self.project.id,
                        path,
                        size,
                        md5,
                        utc(created),
                        None if trashed is None else utc(trashed),
                        key,
                    ),
                )
                for row_id, size, md5, created, trashed, key in rows
            ]
        return self._seen[path]

    def _live(self, path: str) -> tuple[int, ObjectInfo] | None:
        rows = self._rows(path)
        return rows[0] if rows and rows[0][1].trashed_at is None else None

    def _newest_trashed(self, path: str) -> tuple[int, ObjectInfo] | None:
        return next((row for row in self._rows(path) if row[1].trashed_at is not None), None)

    def get(self, path: str) -> ObjectInfo | None:
        """The live object at path as this transaction sees it (a trashed one is not)."""
        live = self._live(path)
        return None if live is None else live[1]

    def trashed(self, path: str) -> ObjectInfo | None:
        """The version at path most recently moved to the trash."""
        newest = self._newest_trashed(path)
        return None if newest is None else newest[1]

    def versions(self, path: str) -> list[ObjectInfo]:
        """Every version at path: the live one first, then those in the trash, newest first."""
        return [info for _, info in self._rows(path)]

    def _add(self, live: tuple[int, int] = (0, 0), trash: tuple[int, int] = (0, 0)) -> None:
        """Change the project's totals by (bytes, objects) live and in the trash."""
        self.project = replace(
            self.project,
            used_bytes=self.project.used_bytes + live[0],
            object_count=self.project.object_count + live[1],
            trash_bytes=self.project.trash_bytes + trash[0],
            trash_count=self.project.trash_count + trash[1],
        )
        _ADD_USAGE.run(
            self._conn,
            b_project=self.project.id,
            b_bytes=live[0],
            b_count=live[1],
            b_trash_bytes=trash[0],
            b_trash_count=trash[1],
            b_now=datetime.now(UTC),
        )

    def put(
        self,
        path: str,
        *,
        size: int,
        md5: str,
        uploader_id: int | None,
        storage_key: str | None = None,
        keep_replaced: bool = True,
    ) -> ObjectInfo:
        """Index an object whose bytes are at `storage_key` (None: the path's own key) as the live version
        at its path. The version it replaces goes to the trash (keep_replaced) or, its key then in
        `released`, is dropped; one at the same key is updated in place. A version in the trash at the
        same key (a content address pushed again) is live again."""
        live, now = self._live(path), datetime.now(UTC)
        values = {
            "b_size": size,
            "b_md5": md5,
            "b_uploader_id": uploader_id,
            "b_created_at": now,
            "b_trashed_at": None,
            "b_storage_key": storage_key,
        }
        info = ObjectInfo(self.project.id, path, size, md5, now, storage_key=storage_key)
        if live is not None and live[1].key == info.key:
            _REPLACE_ROW.run(self._conn, b_id=live[0], **values)
            self._add(live=(size - live[1].size, 0))
            self._seen.pop(path)
            return info
        if live is not None:
            if keep_replaced:  # first out of the way: the unique index holds one live row per path
                _SET_TRASHED.run(self._conn, b_id=live[0], b_trashed_at=now)
                self._add(live=(-live[1].size, -1), trash=(live[1].size, 1))
            else:
                _DELETE_ROW.run(self._conn, b_id=live[0])
                self._add(live=(-live[1].size, -1))
                self.released.append(live[1].key)
        for row_id, version in self._rows(path):
            if version.trashed_at is not None and version.key == info.key:  # the same bytes: one row
                _DELETE_ROW.run(self._conn, b_id=row_id)
                self._add(trash=(-version.size, -1))
        _INSERT_OBJECT.run(self._conn, b_project=self.project.id, b_path=path, **values)
        self._add(live=(size, 1))
        self._seen.pop(path)
        return info

    def remove(self, path: str) -> bool:
        """Drop the live row at path (or, when there is none, the newest trashed one) and its share of
        the totals; False when there was none."""
        found = self._live(path) or self._newest_trashed(path)
        if found is None:
            return False
        row_id, existing = found
        _DELETE_ROW.run(self._conn, b_id=row_id)
        if existing.trashed_at is None:
            self._add(live=(-existing.size, -1))
        else:
            self._add(trash=(-existing.size, -1))
        self._seen.pop(path)
        return True

    def restore(self, path: str) -> ObjectInfo | None:
        """Bring the newest version in the trash at path back; the live version there, if any, takes its
        place in the trash. None when the trash holds nothing at path."""
        found = self._newest_trashed(path)
        if found is None:
            return None
        row_id, existing = found
        live, now = self._live(path), datetime.now(UTC)
        if live is not None:  # first out of the way: the unique index holds one live row per path
            _SET_TRASHED.run(self._conn, b_id=live[0], b_trashed_at=now)
            self._add(live=(-live[1].size, -1), trash=(live[1].size, 1))
        _SET_TRASHED.run(self._conn, b_id=row_id, b_trashed_at=None)
        self._add(live=(existing.size, 1), trash=(-existing.size, -1))
        self._seen.pop(path)
        return replace(existing, trashed_at=None)

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
        returns each dropped object by its storage key (a path may have several versions in the trash)."""
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
            gone = (
                ObjectInfo(self.project.id, r.path, r.size, r.md5, r.created_at, None, r.storage_key)
                for r in found
            )
            dropped.update((info.key, info) for info in gone)
        self._seen.clear()
        return dropped

    def _among(self, paths: Sequence[str], *, trashed: bool) -> ColumnElement[bool]:
        state = _O.trashed_at.is_not(None) if trashed else _O.trashed_at.is_(None)
        return and_(_O.project_id == self.project.id, _O.path.in_(list(paths)), state)

    def reserved(self, *, besides: str | None = None) -> int:
        """Room the project's open direct uploads hold (read on this transaction's connection: another
        one could wait for a pool that every writer waiting for this lock holds)."""
        return reserved(self._conn, self.project.id, datetime.now(UTC), besides=besides)
