"""Real processes: the registry under gunicorn (`data-registry serve`) with the GitLab simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.harness import RegistryServer, Simulator, start_registry, start_simulator
from tests.conftest import storage_env


@pytest.fixture(scope="module")
def gitlab() -> Iterator[Simulator]:
    simulator = start_simulator()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry"), gitlab.url)
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["local", "s3", "gcs"])
def registry_on_each_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator
) -> Iterator[RegistryServer]:
    """The registry on local disk, on S3 (SeaweedFS, which checks the presigned URLs it is sent to) and
    on GCS (the emulator; tests check the signatures themselves)."""
    server = start_registry(
        tmp_path_factory.mktemp("registry"), gitlab.url, **storage_env(request.param, request)
    )
    yield server
    server.stop()
