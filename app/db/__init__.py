"""The index database: engine set-up (SQLite tuned for concurrent writers, or PostgreSQL) and migrations."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.url import make_url

from app.outages import ride_out

MIGRATIONS = Path(__file__).parent / "migrations"
OUTAGE_PATIENCE = 15.0  # seconds a new connection waits out a database that refuses it (a restart)


_FOR_GOOD = (
    "password authentication failed",
    "does not exist",
    "pg_hba.conf",
    "authentication",
    "permission",
)


def _not_now(error: BaseException) -> bool:
    """A connection refused, cut, or a server starting up or shutting down, not a wrong password, user
    or database name (libpq reports connection failures without a SQLSTATE: its message tells them
    apart): worth trying again for a while."""
    if type(error).__name__ != "OperationalError":
        return False
    state = getattr(error, "sqlstate", None)
    if state is not None:
        return bool(state.startswith("08") or state.startswith("57P"))
    message = str(error).lower()
    return not any(phrase in message for phrase in _FOR_GOOD)


def build_engine(url: str) -> Engine:
    """An engine for the index. SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE for writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args={"connect_timeout": 5}
        )

        @event.listens_for(engine, "do_connect")
        def _patient_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            # every new connection, the pool's replacements for ones a restart cut included
            return ride_out(lambda: dialect.connect(*cargs, **cparams), _not_now, OUTAGE_PATIENCE)

        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite's own is broken)
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=60000",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("reader"):
            return  # single-statement reads run in SQLite's autocommit mode: no BEGIN/ROLLBACK trip
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("writer") else "BEGIN")

    return engine


@functools.cache
def head_revision() -> str:
    """The newest migration's revision: what a database must be at to be served."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Run the alembic migrations up to `revision`."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    command.upgrade(config, revision)
