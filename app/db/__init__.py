"""The index database: engine set-up (SQLite tuned for concurrent writers, or PostgreSQL) and migrations."""

from __future__ import annotations

import functools
import select
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
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


def _quiet(dbapi_conn: Any) -> bool:
    """Whether a pooled psycopg connection is OK with nothing to read: a server that drops a connection
    (a restart, a terminated backend) sends FATAL and closes it, which makes its socket readable."""
    try:
        poller = select.poll()
        poller.register(dbapi_conn.pgconn.socket, select.POLLIN)
        return bool(dbapi_conn.pgconn.status == 0 and not poller.poll(0))
    except Exception:  # a closed connection has no socket: the ping says why
        return False


def build_engine(url: str) -> Engine:
    """An engine for the index. SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE for writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_size=10, max_overflow=20, connect_args={"connect_timeout": 5})

        @event.listens_for(engine, "checkout")
        def _ping_if_dropped(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            # Core's pool_pre_ping, but only for a connection that is not quiet: it cost every
            # transaction a round trip (scripts/bench/upload_index_cpu.py)
            if _quiet(dbapi_conn):
                return
            try:
                engine.dialect.do_ping(dbapi_conn)
            except engine.dialect.loaded_dbapi.Error as e:
                if not engine.dialect.is_disconnect(e, dbapi_conn, None):
                    raise
                raise sa_exc.InvalidatePoolError() from e  # as pre-ping: the pool's older connections too

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

    from app.db.sql import CompiledStatement

    begin, begin_immediate = CompiledStatement(text("BEGIN")), CompiledStatement(text("BEGIN IMMEDIATE"))

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("reader"):
            return  # single-statement reads run in SQLite's autocommit mode: no BEGIN/ROLLBACK trip
        (begin_immediate if options.get("writer") else begin).run(conn)  # every write: no Core round

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
