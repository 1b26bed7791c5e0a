"""The auth cache shared through the index database, so one credential costs GitLab one round of calls
per TTL for all worker processes and replicas together, not one per process."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, delete, or_, select, update

from app.db.models import Base
from app.db.sql import PreparedQuery, database_errors, insert_if_absent

_CACHE = Base.metadata.tables["auth_cache"]
_C = _CACHE.c


@dataclass(frozen=True)
class CachedEntry:
    payload: str
    expires_at: float  # epoch seconds
    stale_until: float


class SharedAuthCache:
    """Rows keyed by a hash of (credential digest, project); with leases so that only one process asks."""

    def __init__(self, engine: Engine) -> None:
        self._writer = engine.execution_options(writer=True)
        self._get = PreparedQuery(
            engine, select(_C.payload, _C.expires_at, _C.stale_until).where(_C.key == bindparam("key"))
        )

    def get(self, key: str) -> CachedEntry | None:
        """The answer stored under key (possibly expired: check expires_at), None when there is none yet."""
        row = self._get.first(key=key)
        if row is None or row[0] is None:
            return None
        return CachedEntry(payload=row[0], expires_at=row[1], stale_until=row[2])

    def claim(self, key: str, lease_seconds: float) -> bool:
        """Become the one process that asks GitLab for key; False while another holds a live lease."""
        now = time.time()
        lease = {
            "key": key,
            "payload": None,
            "expires_at": 0.0,
            "stale_until": 0.0,
            "lease_until": now + lease_seconds,
        }
        with database_errors(), self._writer.begin() as conn:
            if insert_if_absent(conn, _CACHE, "key", lease):
                return True
            taken = conn.execute(
                update(_CACHE)
                .where(_C.key == key, _C.lease_until < now, or_(_C.payload.is_(None), _C.expires_at <= now))
                .values(lease_until=now + lease_seconds)
            )
            return taken.rowcount == 1

    def put(self, key: str, payload: str, *, ttl: float, stale_grace: float) -> None:
        """Store an answer for ttl seconds (kept stale_grace longer for reads while GitLab is down)."""
        now = time.time()
        with database_errors(), self._writer.begin() as conn:
            if random.random() < 0.01:  # now and then, forget answers past their stale grace
                conn.execute(delete(_CACHE).where(_C.stale_until < now, _C.lease_until < now, _C.key != key))
            conn.execute(
                update(_CACHE)
                .where(_C.key == key)
                .values(
                    payload=payload,
                    expires_at=now + ttl,
                    stale_until=now + ttl + stale_grace,
                    lease_until=0.0,
                )
            )

    def release(self, key: str) -> None:
        """Give up a lease without an answer (GitLab could not be asked), keeping any older answer."""
        with database_errors(), self._writer.begin() as conn:
            conn.execute(delete(_CACHE).where(_C.key == key, _C.payload.is_(None)))
            conn.execute(update(_CACHE).where(_C.key == key).values(lease_until=0.0))

    def clear(self) -> None:
        """Forget every answer (a project moved: answers looked up by its old path are wrong now)."""
        with database_errors(), self._writer.begin() as conn:
            conn.execute(delete(_CACHE))
