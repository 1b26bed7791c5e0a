"""Shared fixtures: the GitLab simulator on a real socket, and registry apps built with create_app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.db import upgrade
from app.settings import load_settings
from scripts.harness import Simulator, start_simulator

TOKENS = {
    "maintainer": "glpat-maintainer-token-0001",
    "developer": "glpat-developer-token-0002",
    "reporter": "glpat-reporter-token-00003",
    "guest": "glpat-guest-token-00000004",
    "outsider": "glpat-outsider-token-00005",
    "read_api": "glpat-readonly-token-00006",
    "expired": "glpat-expired-token-000007",
    "revoked": "glpat-revoked-token-000008",
    "owner": "glpat-owner-token-00000009",
    "partner": "glpat-partner-token-000010",
    "subgroup": "glpat-subgroup-token-00011",
}


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A fresh GitLab simulator (seeded from scripts/gitlab_sim/seed.json) on 127.0.0.1."""
    sim = start_simulator()
    yield sim
    sim.stop()


@pytest.fixture
def make_app(tmp_path: Path, simulator: Simulator) -> Callable[..., Flask]:
    """Build a registry app on a fresh local storage directory, its index migrated."""

    def build(**overrides: Any) -> Flask:
        settings = {
            "storage_url": f"file://{tmp_path / 'storage'}",
            "gitlab_url": simulator.url,
            **overrides,
        }
        upgrade(load_settings(environ={}, overrides=settings).effective_database_url)
        return create_app(settings)

    return build


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}
