"""Every storage backend behind one fixture, so one contract suite runs against all of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from app.storage.local import LocalBackend
from app.storage.s3 import S3Backend
from scripts.harness import start_fake_gcs
from tests.conftest import make_bucket

PART = 5 * 1024 * 1024  # S3's smallest part


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[str]:
    server = start_fake_gcs()
    yield server.url
    server.stop()


@pytest.fixture(params=["local", "s3-moto", "s3-seaweedfs", "gcs-emulator", "gcs-fake"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    return make_backend(request.param, request, tmp_path, monkeypatch)


@pytest.fixture(params=["s3-moto", "s3-seaweedfs", "gcs-emulator", "gcs-fake"])
def cloud_backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """The backends whose signed URLs a bucket serves (the local backend's are served by the app)."""
    return make_backend(request.param, request, tmp_path, monkeypatch)


def make_backend(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> object:
    if name == "local":
        return LocalBackend(root=tmp_path / "root", secret_key="s" * 32, public_url=None)
    if name in ("gcs-emulator", "gcs-fake"):
        emulator, key_file = (
            request.getfixturevalue("gcs_emulator" if name == "gcs-emulator" else "fake_gcs"),
            request.getfixturevalue("service_account_file"),
        )
        return gcs_backend(emulator, key_file, monkeypatch, chunk_size=PART)
    if name == "s3-moto":
        endpoint = request.getfixturevalue("moto_endpoint")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto")
    else:
        server = request.getfixturevalue("seaweedfs")
        endpoint = server.endpoint
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    return S3Backend(
        bucket=make_bucket(endpoint),
        prefix="tenant/a",
        endpoint_url=endpoint,
        region="us-east-1",
        addressing_style="path",
        part_size=PART,
    )


def gcs_backend(emulator: str, key_file: Path, monkeypatch: pytest.MonkeyPatch, *, chunk_size: int) -> object:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from app.storage.gcs import build_gcs_backend

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    name = f"registry-{uuid.uuid4().hex[:12]}"
    client = storage.Client(
        project="registry-test", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator}
    )
    client.create_bucket(name)
    backend = build_gcs_backend(bucket=name, prefix="tenant/a", emulator_host=emulator, public_url=None)
    backend._chunk = chunk_size  # small resumable chunks, so tests cross chunk boundaries quickly
    return backend
