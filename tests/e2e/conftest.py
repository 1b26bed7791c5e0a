"""Real processes: the registry under gunicorn (`data-registry serve`) with the GitLab simulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from scripts.gitlab_sim import create_simulator, load_world
from tests.conftest import Simulator, serve_in_thread

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryServer:
    url: str
    storage: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_registry(root: Path, gitlab_url: str, **env: str) -> RegistryServer:
    """`data-registry db upgrade` then `data-registry serve` on a free loopback port."""
    storage = root / "storage"
    environ = {
        **os.environ,
        "REGISTRY_STORAGE_URL": f"file://{storage}",
        "REGISTRY_GITLAB_URL": gitlab_url,
        **env,
    }
    subprocess.run([BIN / "data-registry", "db", "upgrade"], env=environ, check=True, capture_output=True)
    port = free_port()
    log = root / "registry.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [BIN / "data-registry", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/health", timeout=1).status_code == 200:
                return RegistryServer(url=url, storage=storage, log=log, process=process)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"registry did not start:\n{log.read_text()}")


def stop_registry(server: RegistryServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def gitlab() -> Iterator[Simulator]:
    world = load_world()
    server = serve_in_thread(create_simulator(world))
    yield Simulator(url=f"http://127.0.0.1:{server.server_port}", world=world, server=server)
    server.shutdown()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry"), gitlab.url)
    yield server
    stop_registry(server)
