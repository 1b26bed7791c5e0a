"""The alembic migrations build exactly the schema the models describe, on SQLite and on PostgreSQL
(whichever the suite runs on), and downgrade cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import MIGRATIONS, build_engine, upgrade
from app.db.models import Base


def test_migrations_match_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = build_engine(database_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_nothing_and_up_again(database_url: str) -> None:
    upgrade(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = database_url
    command.downgrade(config, "base")
    engine = build_engine(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(database_url)
    engine = build_engine(database_url)
    assert {"projects", "objects", "auth_cache", "upload_sessions", "hook_deliveries"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
