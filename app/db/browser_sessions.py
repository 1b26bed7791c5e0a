"""Signed-in browser sessions in the index database (the browser only ever holds a random value whose hash
keys its row). Sign-ins in progress live in the browser's signed cookie, not here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from app.db.models import Base
from app.db.sql import database_errors, utc
from app.model.identity import BrowserSession, OAuthTokens

_SESSIONS = Base.metadata.tables["browser_sessions"]


class BrowserSessions:
    """Rows of `browser_sessions`."""

    def __init__(self, engine: Engine) -> None:
        self._writer = engine.execution_options(writer=True)
        self._reader = engine.execution_options(reader=True)

    def create(self, session: BrowserSession, now: datetime) -> None:
        with database_errors(), self._writer.begin() as conn:
            conn.execute(
                insert(_SESSIONS).values(
                    id_hash=session.id_hash,
                    user_id=session.user_id,
                    username=session.username,
                    access_token=session.tokens.access_token,
                    refresh_token=session.tokens.refresh_token,
                    access_expires_at=session.tokens.expires_at,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )

    def get(self, id_hash: str, now: datetime) -> BrowserSession | None:
        with database_errors(), self._reader.connect() as conn:
            row = conn.execute(
                select(_SESSIONS).where(_SESSIONS.c.id_hash == id_hash, _SESSIONS.c.expires_at > now)
            ).first()
        if row is None:
            return None
        return BrowserSession(
            id_hash=row.id_hash,
            user_id=row.user_id,
            username=row.username,
            tokens=OAuthTokens(row.access_token, row.refresh_token, utc(row.access_expires_at)),
            csrf_token=row.csrf_token,
            expires_at=utc(row.expires_at),
        )

    def replace_tokens(self, id_hash: str, old_access_token: str, tokens: OAuthTokens) -> bool:
        """Store refreshed tokens unless another request refreshed them first (False then)."""
        with database_errors(), self._writer.begin() as conn:
            done = conn.execute(
                update(_SESSIONS)
                .where(_SESSIONS.c.id_hash == id_hash, _SESSIONS.c.access_token == old_access_token)
                .values(
                    access_token=tokens.access_token,
                    refresh_token=tokens.refresh_token,
                    access_expires_at=tokens.expires_at,
                )
            )
        return bool(done.rowcount)

    def end(self, id_hash: str) -> None:
        with database_errors(), self._writer.begin() as conn:
            conn.execute(delete(_SESSIONS).where(_SESSIONS.c.id_hash == id_hash))

    def purge(self, sessions_before: datetime) -> int:
        """Drop expired sessions; how many went."""
        with database_errors(), self._writer.begin() as conn:
            gone = conn.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at <= sessions_before)).rowcount
        return int(gone)
