"""A pooled PostgreSQL connection the server dropped is replaced before a write uses it: the check that
stands in for Core's pre-ping (a round trip every transaction) pings only a connection that is not
quiet. Runs in the PostgreSQL pass (REGISTRY_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import create_engine

from app.db import build_engine


def test_a_connection_the_server_dropped_is_replaced_at_checkout(database_url: str) -> None:
    if not os.environ.get("REGISTRY_TEST_POSTGRES_URL"):
        pytest.skip("needs PostgreSQL (REGISTRY_TEST_POSTGRES_URL)")
    engine = build_engine(database_url)
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:  # back in the pool when this ends
            dropped = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({dropped})").scalar()
            deadline = time.monotonic() + 10
            while conn.exec_driver_sql(
                f"SELECT count(*) FROM pg_stat_activity WHERE pid = {dropped}"
            ).scalar():
                assert time.monotonic() < deadline, "the backend did not go"
                time.sleep(0.05)
        with engine.begin() as conn:  # the pool's only connection is the dropped one
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != dropped
    finally:
        engine.dispose()
        admin.dispose()
