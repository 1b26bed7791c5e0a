"""Shared fixtures: the GitLab simulator on a real socket, and registry apps built with create_app."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask

from app import create_app
from app.db import upgrade
from app.db.index import ObjectIndex
from app.settings import load_settings
from scripts.harness import (
    SeaweedFS,
    Simulator,
    free_port,
    fresh_database_url,
    start_seaweedfs,
    start_simulator,
)

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
    "admin": "glpat-service-admin-token-1",
    "admin_read_api": "glpat-admin-readonly-00012",
}


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A fresh GitLab simulator (seeded from scripts/gitlab_sim/seed.json) on 127.0.0.1."""
    sim = start_simulator()
    yield sim
    sim.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The test's own empty index database (PostgreSQL when REGISTRY_TEST_POSTGRES_URL is set)."""
    return fresh_database_url(tmp_path)


@pytest.fixture
def make_app(tmp_path: Path, simulator: Simulator, database_url: str) -> Callable[..., Flask]:
    """Build a registry app on a fresh local storage directory, its index migrated."""

    def build(**overrides: Any) -> Flask:
        settings = {
            "storage_url": f"file://{tmp_path / 'storage'}",
            "database_url": database_url,
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


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator in this process (it checks no signature: tests/storage/goog4.py does)."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def service_account_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service-account key file with a fresh RSA key: google-auth signs URLs with it, offline."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path_factory.mktemp("gcp") / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "registry-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "registry@registry-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


def gcs_registry_env(emulator: str, key_file: Path) -> dict[str, str]:
    """What a registry needs to keep its objects in a fresh bucket of the GCS emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    name = f"registry-{uuid.uuid4().hex[:12]}"
    client = storage.Client(
        project="registry-test", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator}
    )
    client.create_bucket(name)
    return {
        "REGISTRY_STORAGE_URL": f"gs://{name}/registry",
        "STORAGE_EMULATOR_HOST": emulator,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
    }


def storage_env(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a registry on `local` disk (the default), `s3` (SeaweedFS) or `gcs` (the emulator)."""
    if backend == "s3":
        return s3_registry_env(request.getfixturevalue("seaweedfs"))
    if backend == "gcs":
        key_file = request.getfixturevalue("service_account_file")
        return gcs_registry_env(request.getfixturevalue("gcs_emulator"), key_file)
    return {}


_INDEPENDENT = (  # never touch the index database, or only as every other test does
    "tests/storage/",
    "tests/chart/",
    "tests/e2e/test_slow_clients.py",  # the gunicorn worker class
    "tests/e2e/test_api_docs_page.py",
    "tests/e2e/test_ci_fragment.py",
    "tests/e2e/test_doctor.py",  # client-side tools: their index use is the API's, tested on both
    "tests/e2e/test_import_generic_packages.py",
    "tests/e2e/test_upload_download.py",
    "tests/e2e/test_install.py",  # a clean venv installs and serves
    "tests/e2e/test_browser_",  # pages: the session and index queries run in the unit tests on both
    "tests/e2e/test_dvc_credentials.py",  # GitLab-side; the shared auth cache runs in test_gitlab_calls
    "tests/e2e/test_bad_input.py",  # refused before the index; fuzzing once is enough
    "tests/e2e/test_dvc_http.py::test_push_status_pull_fetch[local-basic]",  # the same index calls as bearer
    "tests/unit/test_request_arrival.py",
    "tests/unit/test_datasets.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_framing.py",  # the gunicorn worker class
    "tests/unit/test_framing",  # starts and stops a PostgreSQL of its own, whichever pass runs it
    "tests/unit/test_client_http.py",  # client-side sessions
    "tests/e2e/test_s3_clients.py",  # outside clients through the door: its index calls are boto3's, on both
    "tests/e2e/test_s3_fuzz.py",  # refused before the index or as test_s3_door's; fuzzing once is enough
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the PostgreSQL pass of scripts/test, skip what does not touch the index (it ran on SQLite)."""
    if not os.environ.get("REGISTRY_TEST_POSTGRES_URL"):
        return
    skip = pytest.mark.skip(reason="independent of the index database: runs in the SQLite pass")
    same = pytest.mark.skip(reason="the index does the same with every bucket: the local variant runs here")
    for item in items:
        if any(part in item.nodeid for part in _INDEPENDENT):
            item.add_marker(skip)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("registry_on_each_backend") in ("s3", "gcs"):
            item.add_marker(same)


def usage_of(index: ObjectIndex, project_id: int) -> tuple[int, int]:
    """(bytes used, object count) of a project as its record says; zeros when the index has none."""
    record = index.project(project_id)
    return (record.used_bytes, record.object_count) if record else (0, 0)
