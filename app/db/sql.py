"""SQL helpers every table module shares: prepared single-row reads, statements compiled once for a
transaction's hot path, INSERT-if-absent on both dialects, database errors as 503, and UTC datetimes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ClauseElement, Connection, Dialect, Engine, Select, Table, and_, true
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.compiler import SQLCompiler

from app.errors import DatabaseUnavailable


def insert_if_absent(conn: Connection, table: Table, unique: str, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT (unique) DO NOTHING on SQLite and PostgreSQL; True when the row was inserted."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[unique])
        .returning(table.c[unique])  # rowcount is -1 here with psycopg: a returned row says it
    )
    return conn.execute(statement).first() is not None


def under(column: Any, prefix: str) -> Any:
    """`column` starts with `prefix`, as a range (`>= prefix AND < its successor`) that a B-tree on the
    column serves on both databases; `LIKE 'prefix%'` is a scan on SQLite (its LIKE ignores case, so its
    indexes cannot answer it). Paths compare by code point on both (SQLite BINARY, PostgreSQL COLLATE "C")."""
    if not prefix:
        return true()
    successor = successor_of(prefix)
    return column >= prefix if successor is None else and_(column >= prefix, column < successor)


def successor_of(prefix: str) -> str | None:
    """The smallest string greater than every string starting with prefix; None when there is none."""
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: the next one is U+E000
        following = 0xE000
    return stem[:-1] + chr(following)


NOT_MIGRATED = "The index database is not set up: run `data-registry db upgrade`"


def _missing_table(error: BaseException) -> bool:
    """SQLite's "no such table", PostgreSQL's undefined_table (SQLSTATE 42P01), raw or wrapped."""
    raw = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    return "no such table" in str(raw) or getattr(raw, "sqlstate", None) == "42P01"


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn a database that cannot answer (down, locked too long, pool exhausted, never migrated) into
    a 503."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.ProgrammingError) as e:
        if _missing_table(e):
            raise DatabaseUnavailable(NOT_MIGRATED) from None
        if isinstance(e, sa_exc.ProgrammingError):
            raise  # a bug of ours, not the database's state
        raise DatabaseUnavailable() from e  # the cause is logged (app.web.errors), never shown
    except (sa_exc.InterfaceError, sa_exc.TimeoutError) as e:
        raise DatabaseUnavailable() from e


def utc(moment: datetime) -> datetime:
    """Every datetime stored here is UTC: SQLite hands it back naive, PostgreSQL in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class PreparedQuery:
    """A select compiled once and run on a connection each thread keeps for itself (no pool round trip,
    no transaction). About 6 µs instead of Core's 55 µs: most of a HEAD's or GET's time otherwise
    (measured with scripts/bench/get_head_rps.py)."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        self._engine = engine
        compiled = statement.compile(dialect=engine.dialect)
        self._sql = compiled.string
        self._order = compiled.positiontup if compiled.positional else None
        # SQLite hands back strings for datetimes; psycopg already returns Python types.
        self._convert = [
            column.type.dialect_impl(engine.dialect).result_processor(engine.dialect, None)
            if engine.dialect.name == "sqlite"
            else None
            for column in statement.selected_columns
        ]
        self._local = threading.local()

    def _connection(self) -> Any:
        connection: Any = getattr(self._local, "connection", None)
        if connection is None:
            pooled = self._engine.raw_connection()
            pooled.detach()  # this thread's own from now on; the pool stays free for writers
            connection = pooled.dbapi_connection
            if self._engine.dialect.name == "postgresql":
                connection.autocommit = True
            self._local.connection = connection
        return connection

    def first(self, **params: Any) -> tuple[Any, ...] | None:
        """The first row with every column converted to its Python type, or None."""
        rows = self._run(params, many=False)
        return rows[0] if rows else None

    def all(self, **params: Any) -> list[tuple[Any, ...]]:
        """Every row, each column converted to its Python type (for small answers: a folder's state)."""
        return self._run(params, many=True)

    def _run(self, params: dict[str, Any], *, many: bool) -> list[tuple[Any, ...]]:
        args: Any = tuple(params[name] for name in self._order) if self._order else params
        dbapi = self._engine.dialect.loaded_dbapi
        for attempt in (1, 2):
            try:
                cursor = self._connection().cursor()
                try:
                    cursor.execute(self._sql, args)
                    rows = cursor.fetchall() if many else [row] if (row := cursor.fetchone()) else []
                finally:
                    cursor.close()
                break
            except dbapi.ProgrammingError as e:
                if _missing_table(e):
                    raise DatabaseUnavailable(NOT_MIGRATED) from None
                raise
            except (
                sa_exc.OperationalError,
                sa_exc.InterfaceError,
                dbapi.OperationalError,
                dbapi.InterfaceError,
            ) as e:
                if _missing_table(e):
                    raise DatabaseUnavailable(NOT_MIGRATED) from None
                broken, self._local.connection = getattr(self._local, "connection", None), None
                if broken is not None:
                    broken.close()
                if attempt == 2:  # the first try may have used a connection the server dropped
                    raise DatabaseUnavailable() from e
        if not any(self._convert):
            return [tuple(row) for row in rows]
        return [
            tuple(
                convert(value) if convert else value
                for convert, value in zip(self._convert, row, strict=True)
            )
            for row in rows
        ]


class _Form:
    """A statement as one dialect runs it: its SQL, its parameters' order and converters, and its
    columns' converters."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        binds = compiled.binds
        self.names = (
            list(compiled.positiontup) if compiled.positional and compiled.positiontup else list(binds)
        )
        self.positional = bool(compiled.positional)
        self.binds = [
            (name, process)
            for name in self.names
            if (process := binds[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]
        columns = getattr(statement, "selected_columns", ())
        self.columns = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]


class CompiledStatement:
    """A Core statement compiled once per dialect and run on a transaction's own DBAPI connection: no
    compile-cache look-up, events or result objects per call (a few µs a statement instead of Core's
    30 on SQLite; scripts/bench/upload_index_cpu.py). Errors are raised as Core raises them, and a
    connection that dropped is invalidated as Core does. For the few statements every upload runs."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._forms: dict[tuple[str, str, str], _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = _Form(self._statement, dialect)
        return form

    def run(self, conn: Connection, **params: Any) -> list[tuple[Any, ...]]:
        """Execute with params on conn's transaction; the rows it returns (none for DML), each column
        converted to its Python type."""
        dialect = conn.dialect
        form = self._form(dialect)
        for name, process in form.binds:
            params[name] = process(params[name])
        args: Any = (
            tuple(params[n] for n in form.names) if form.positional else {n: params[n] for n in form.names}
        )
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(form.sql, args)
            rows = cursor.fetchall() if cursor.description else []
        except dialect.loaded_dbapi.Error as e:
            dropped = dialect.is_disconnect(e, dbapi_conn, cursor)
            error = sa_exc.DBAPIError.instance(
                form.sql, args, e, dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=dialect
            )
            with contextlib.suppress(Exception):
                cursor.close()
            if dropped:
                conn.invalidate(error)
            raise error from e
        cursor.close()
        if not any(form.columns):
            return [tuple(row) for row in rows]
        return [
            tuple(
                convert(value) if convert else value for convert, value in zip(form.columns, row, strict=True)
            )
            for row in rows
        ]
