"""Real processes: the registry under gunicorn (`data-registry serve`) with the GitLab simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.harness import RegistryServer, Simulator, start_registry, start_simulator


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
