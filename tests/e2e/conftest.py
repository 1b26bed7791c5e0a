"""Real processes: the registry under gunicorn (`data-registry serve`) with the GitLab simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


OAUTH_APP = ("sim-registry-app", "gloas-sim-registry-secret")  # the simulator's seeded OAuth application


def start_signin_registry(root: Path, gitlab: Simulator, **env: str) -> RegistryServer:
    """The registry with sign-in with GitLab on, registered as the simulator's OAuth application."""
    client_id, secret = OAUTH_APP
    server = start_registry(
        root, gitlab.url, REGISTRY_OAUTH_CLIENT_ID=client_id, REGISTRY_OAUTH_CLIENT_SECRET=secret, **env
    )
    gitlab.world.oauth_apps[client_id]["redirect_uri"] = f"{server.url}/-/auth/callback"
    return server


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


# Debian's Chromium (Playwright's own browser download needs a CDN this machine cannot reach); no
# background traffic of its own, so a test can tell every request the page made.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1280,900",
]


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium: apt-get install chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}
