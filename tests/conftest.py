"""Shared fixtures: the GitLab simulator on a real socket, and registry apps built with create_app."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.db import upgrade
from app.settings import load_settings
from scripts.gitlab_sim import World, create_simulator, load_world

TOKENS = {
    "maintainer": "glpat-maintainer-token-0001",
    "developer": "glpat-developer-token-0002",
    "reporter": "glpat-reporter-token-00003",
    "guest": "glpat-guest-token-00000004",
    "outsider": "glpat-outsider-token-00005",
    "read_api": "glpat-readonly-token-00006",
    "expired": "glpat-expired-token-000007",
    "revoked": "glpat-revoked-token-000008",
}


@dataclass
class Simulator:
    url: str
    world: World
    server: BaseWSGIServer


def serve_in_thread(wsgi_app: Any) -> BaseWSGIServer:
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A fresh GitLab simulator (seeded from scripts/gitlab_sim/seed.json) on 127.0.0.1."""
    world = load_world()
    server = serve_in_thread(create_simulator(world))
    yield Simulator(url=f"http://127.0.0.1:{server.server_port}", world=world, server=server)
    server.shutdown()


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
