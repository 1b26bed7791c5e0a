"""Alembic environment: migrations run against the URL handed over by app.db.upgrade."""

from __future__ import annotations

from alembic import context

from app.db import build_engine
from app.db.models import Base

url = context.config.attributes["url"]
engine = build_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
