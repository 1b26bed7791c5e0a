"""The package as the Dockerfile installs it (no Docker daemon here): a clean venv gets it with `pip
install .[server,postgresql]`, `data-registry db upgrade` and `data-registry serve` run from it, the server
answers /-/health and /-/ready. And the Dockerfile names what exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests

from scripts.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(os.environ.get("REGISTRY_TEST_POSTGRES_URL")),
        reason="independent of the index: SQLite pass only",
    ),
]


def test_dockerfile_matches_the_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), name
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'ENTRYPOINT ["data-registry"]' in dockerfile and "data-registry" in scripts
    assert re.search(r"^USER 10001", dockerfile, re.M)  # non-root, the chart's runAsUser
    assert 'CMD ["serve"' in dockerfile
    assert '".[server,postgresql]"' in dockerfile  # the plain install is the client only


def test_a_clean_venv_installs_and_serves(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", f"{ROOT}[server,postgresql]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REGISTRY_STORAGE_URL": f"file://{tmp_path / 'data'}",
    }
    upgrade = subprocess.run(
        [venv / "bin" / "data-registry", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [venv / "bin" / "data-registry", "serve", f"--bind=127.0.0.1:{port}", "--workers=1"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=tmp_path,
        )
        try:
            deadline, ready = time.monotonic() + 30, None
            while time.monotonic() < deadline:
                try:
                    ready = requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            assert ready is not None and ready.status_code == 200, (tmp_path / "serve.log").read_text()
            assert ready.json()["checks"] == {"database": "ok", "storage": "ok"}
            assert requests.get(f"http://127.0.0.1:{port}/-/health", timeout=2).json() == {"status": "ok"}
        finally:
            server.terminate()
            server.wait(timeout=30)
