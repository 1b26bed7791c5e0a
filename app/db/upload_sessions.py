"""Direct upload sessions in the index database: open, claim for completion, close, expire."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from app.db.models import Base
from app.db.sql import database_errors, utc
from app.model.upload_sessions import UploadSession

_TABLE = Base.metadata.tables["upload_sessions"]
_S = _TABLE.c


def reserved(conn: Connection, project_id: int, now: datetime, *, besides: str | None = None) -> int:
    """UploadSessions.reserved on a connection of the caller's (inside a project's write transaction)."""
    query = select(func.coalesce(func.sum(_S.size), 0)).where(
        _S.project_id == project_id, _S.expires_at > now
    )
    if besides is not None:
        query = query.where(_S.id != besides)
    return int(conn.execute(query).scalar() or 0)


class UploadSessions:
    """Sessions are rows; `complete` claims one so that two concurrent calls cannot both finish it."""

    def __init__(self, engine: Engine) -> None:
        self._writer = engine.execution_options(writer=True)
        self._reader = engine.execution_options(reader=True)

    def open(self, session: UploadSession) -> None:
        values = {
            "id": session.id,
            "project_id": session.project_id,
            "path": session.path,
            "size": session.size,
            "md5": session.md5,
            "overwrite": session.overwrite,
            "handle": session.handle,
            "uploader_id": session.uploader_id,
            "completing": False,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
        }
        with database_errors(), self._writer.begin() as conn:
            conn.execute(insert(_TABLE).values(**values))

    def get(self, project_id: int, session_id: str) -> UploadSession | None:
        """The project's session with that id, None when unknown (or another project's)."""
        with database_errors(), self._reader.connect() as conn:
            mine = (_S.id == session_id, _S.project_id == project_id, _S.kind == "direct")  # not S3 door
            row = conn.execute(select(_TABLE).where(*mine)).first()
        if row is None:
            return None
        return UploadSession(
            id=row.id,
            project_id=row.project_id,
            path=row.path,
            size=row.size,
            md5=row.md5,
            overwrite=row.overwrite,
            handle=row.handle,
            uploader_id=row.uploader_id,
            created_at=utc(row.created_at),
            expires_at=utc(row.expires_at),
        )

    def is_open(self, session_id: str, now: datetime) -> bool:
        """Whether the session still takes bytes: it exists, has not expired and is not being completed."""
        with database_errors(), self._reader.connect() as conn:
            row = conn.execute(
                select(_S.id).where(_S.id == session_id, _S.completing.is_(False), _S.expires_at > now)
            ).first()
        return row is not None

    def reserved(self, project_id: int, now: datetime, *, besides: str | None = None) -> int:
        """Bytes the project's open direct uploads (other than `besides`) have declared: room they hold."""
        with database_errors(), self._reader.connect() as conn:
            return reserved(conn, project_id, now, besides=besides)

    def claim(self, session_id: str) -> bool:
        """Mark a session as being completed; False when another call already owns it."""
        with database_errors(), self._writer.begin() as conn:
            claimed = conn.execute(
                update(_TABLE).where(_S.id == session_id, _S.completing.is_(False)).values(completing=True)
            )
        return claimed.rowcount == 1

    def release(self, session_id: str) -> None:
        """Give a claimed session back (its upload is not finished yet)."""
        with database_errors(), self._writer.begin() as conn:
            conn.execute(update(_TABLE).where(_S.id == session_id).values(completing=False))

    def close(self, session_id: str) -> None:
        with database_errors(), self._writer.begin() as conn:
            conn.execute(delete(_TABLE).where(_S.id == session_id))

    def expired(self, now: datetime, limit: int = 1000) -> list[tuple[str, str]]:
        """(id, storage handle) of sessions past their expiry, oldest first."""
        with database_errors(), self._reader.connect() as conn:
            rows = conn.execute(
                select(_S.id, _S.handle).where(_S.expires_at < now).order_by(_S.expires_at).limit(limit)
            ).all()
        return [(r.id, r.handle) for r in rows]
