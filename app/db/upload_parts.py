"""S3 door multipart uploads in the index: upload sessions of kind `s3`, their parts and the room they
reserve (the sum of their parts' sizes, plus parts on their way)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update

from app.db.models import Base
from app.db.sql import database_errors, under, utc
from app.model.multipart import MULTIPART_KIND, UploadedPart
from app.model.upload_sessions import UploadSession

_SESSIONS = Base.metadata.tables["upload_sessions"]
_PARTS = Base.metadata.tables["upload_parts"]
_S, _P = _SESSIONS.c, _PARTS.c


def _session(row: Row[Any]) -> UploadSession:
    return UploadSession(
        id=row.id,
        project_id=row.project_id,
        path=row.path,
        size=row.size,
        md5=None,
        overwrite=True,
        handle=row.handle,
        uploader_id=row.uploader_id,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
    )


class MultipartSessions:
    """Door uploads are rows of upload_sessions (so they hold quota like direct uploads and the stale
    upload job expires them); a part's row is written with a guard on its upload's row, so no part is
    recorded once a completion claimed the upload."""

    def __init__(self, engine: Engine) -> None:
        self._writer = engine.execution_options(writer=True)
        self._reader = engine.execution_options(reader=True)

    def open(self, session: UploadSession) -> None:
        values = {
            "id": session.id,
            "project_id": session.project_id,
            "path": session.path,
            "size": 0,
            "md5": None,
            "overwrite": True,
            "handle": session.handle,
            "uploader_id": session.uploader_id,
            "completing": False,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "kind": MULTIPART_KIND,
        }
        with database_errors(), self._writer.begin() as conn:
            conn.execute(insert(_SESSIONS).values(**values))

    def get(self, project_id: int, session_id: str, now: datetime) -> UploadSession | None:
        """The project's open door upload with that id (completing or not), None otherwise."""
        query = select(_SESSIONS).where(
            _S.id == session_id, _S.project_id == project_id, _S.kind == MULTIPART_KIND, _S.expires_at > now
        )
        with database_errors(), self._reader.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _session(row)

    def listed(self, project_id: int, prefix: str, now: datetime, limit: int) -> list[UploadSession]:
        """The project's open door uploads whose path starts with prefix, by path then age."""
        query = (
            select(_SESSIONS)
            .where(
                _S.project_id == project_id,
                _S.kind == MULTIPART_KIND,
                _S.expires_at > now,
                under(_S.path, prefix),
            )
            .order_by(_S.path, _S.created_at, _S.id)
            .limit(limit)
        )
        with database_errors(), self._reader.connect() as conn:
            return [_session(row) for row in conn.execute(query)]

    def reserve(self, session_id: str, size: int, now: datetime, expires_at: datetime) -> bool:
        """Hold `size` more bytes for a part on its way (negative: give them back) and push the expiry
        out; False when the upload is gone, expired or being completed."""
        with database_errors(), self._writer.begin() as conn:
            return _grow(conn, session_id, size, now, expires_at)

    def add_part(self, session_id: str, part: UploadedPart, reserved: int, now: datetime) -> list[str] | None:
        """Record a stored part in place of the `reserved` bytes held for it; the keys of the parts of
        that number it replaces (to delete), or None when the upload no longer takes parts."""
        with database_errors(), self._writer.begin() as conn:
            if not _grow(conn, session_id, 0, now, None):  # locks the upload's row first
                return None
            new_id = conn.execute(
                insert(_PARTS)
                .values(
                    session_id=session_id,
                    number=part.number,
                    key=part.key,
                    size=part.size,
                    md5=part.md5,
                    uploaded_at=part.uploaded_at,
                )
                .returning(_P.id)
            ).scalar_one()
            older = select(_P.id, _P.key, _P.size).where(
                _P.session_id == session_id, _P.number == part.number, _P.id < new_id
            )
            replaced = conn.execute(older).all()
            if replaced:
                conn.execute(delete(_PARTS).where(_P.id.in_([r.id for r in replaced])))
            _grow(conn, session_id, part.size - reserved - sum(r.size for r in replaced), now, None)
        return [r.key for r in replaced]

    def claim(self, session_id: str) -> bool:
        """Mark an upload as being completed (no part is recorded after this), its reservation dropped:
        the object it completes is admitted on its own size; False when another call owns it."""
        with database_errors(), self._writer.begin() as conn:
            claimed = conn.execute(
                update(_SESSIONS)
                .where(_S.id == session_id, _S.completing.is_(False))
                .values(completing=True, size=0)
            )
        return claimed.rowcount == 1

    def release(self, session_id: str) -> None:
        """Give a claimed upload back (its completion failed): it takes parts again and holds their room."""
        held = select(func.coalesce(func.sum(_P.size), 0)).where(_P.session_id == session_id)
        with database_errors(), self._writer.begin() as conn:
            conn.execute(
                update(_SESSIONS)
                .where(_S.id == session_id)
                .values(completing=False, size=held.scalar_subquery())
            )

    def close(self, session_id: str) -> None:
        """Forget the upload and its parts' rows (their blobs are the caller's to delete first)."""
        with database_errors(), self._writer.begin() as conn:
            conn.execute(delete(_PARTS).where(_P.session_id == session_id))
            conn.execute(delete(_SESSIONS).where(_S.id == session_id))

    def parts(self, session_id: str) -> list[UploadedPart]:
        """The upload's parts by number (the newest of a number sent twice)."""
        query = select(_PARTS).where(_P.session_id == session_id).order_by(_P.number, _P.id)
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(query).all()
        newest = {
            r.number: UploadedPart(
                number=r.number, key=r.key, size=r.size, md5=r.md5, uploaded_at=utc(r.uploaded_at)
            )
            for r in rows
        }
        return [newest[n] for n in sorted(newest)]

    def part_keys(self, session_id: str) -> list[str]:
        """Every blob the upload's part rows name (replaced ones not deleted yet included)."""
        with database_errors(), self._reader.connect() as conn:
            return list(conn.execute(select(_P.key).where(_P.session_id == session_id)).scalars())


def _grow(conn: Connection, session_id: str, size: int, now: datetime, expires_at: datetime | None) -> bool:
    values: dict[str, object] = {"size": _S.size + size}
    if expires_at is not None:
        values["expires_at"] = expires_at
    changed = conn.execute(
        update(_SESSIONS)
        .where(_S.id == session_id, _S.completing.is_(False), _S.expires_at > now)
        .values(**values)
    )
    return changed.rowcount == 1
