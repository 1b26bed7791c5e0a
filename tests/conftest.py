"""Shared fixtures: the GitLab simulator on a real socket, and registry apps built with create_app."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask

from app import create_app
from app.db import upgrade
from app.settings import load_settings
from scripts.harness import SeaweedFS, Simulator, start_seaweedfs, start_simulator

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


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 server for the session; each user makes its own bucket."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


def make_bucket(endpoint: str, *, access_key: str | None = None, secret_key: str | None = None) -> str:
    name = f"registry-{uuid.uuid4().hex[:12]}"
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key)
    session.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def s3_registry_env(server: SeaweedFS) -> dict[str, str]:
    """What a registry needs to keep its objects in a fresh bucket of that SeaweedFS."""
    bucket = make_bucket(server.endpoint, access_key=server.access_key, secret_key=server.secret_key)
    return {
        "REGISTRY_STORAGE_URL": f"s3://{bucket}/registry",
        "REGISTRY_S3_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
    }
