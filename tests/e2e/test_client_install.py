"""The client install: the wheel without extras, in a fresh venv, brings only the client's dependencies
(no flask, SQLAlchemy, boto3, google-cloud-storage, gunicorn, APScheduler); its `data-registry` runs
doctor, upload, download and import-generic-packages against the real registry and the GitLab simulator,
and a server command there says in one line what to install."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scripts.harness import RegistryServer, Simulator
from tests.conftest import TOKENS
from tests.e2e.distributions import built_distributions, installed_distributions

DEV = TOKENS["developer"]
CLIENT_DISTRIBUTIONS = {
    "gitlab-data-registry",
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "charset-normalizer",
    "rich",
    "markdown-it-py",
    "mdurl",
    "pygments",
    "pip",
    "setuptools",  # the venv's own on Python 3.11
}
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(os.environ.get("REGISTRY_TEST_POSTGRES_URL")),
        reason="independent of the index: SQLite pass only",
    ),
]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed, no extra."""
    wheel = built_distributions(tmp_path_factory).wheel
    root = tmp_path_factory.mktemp("client")
    subprocess.run([sys.executable, "-m", "venv", root / "venv"], check=True)
    pip = subprocess.run(
        [root / "venv" / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return root / "venv"


def client(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(venv.parent)}
    return subprocess.run(
        [venv / "bin" / "data-registry", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_only_the_clients_dependencies_come(venv: Path) -> None:
    installed = installed_distributions(venv)
    assert installed <= CLIENT_DISTRIBUTIONS, installed - CLIENT_DISTRIBUTIONS
    size = int(subprocess.run(["du", "-sm", venv], capture_output=True, text=True).stdout.split()[0])
    print(f"client venv: {size} MB")
    assert size < 60  # the server's dependencies alone are ~163 MB


def test_help_shows_both_rooms_and_a_server_command_says_what_to_install(venv: Path) -> None:
    shown = client(venv, "--help")
    assert shown.returncode == 0
    assert "server commands" in shown.stdout and "client commands" in shown.stdout
    assert (
        shown.stdout.index("serve ") < shown.stdout.index("client commands") < shown.stdout.index("doctor ")
    )
    for command in (["serve"], ["worker", "--once"], ["db", "upgrade"], ["usage"]):
        refused = client(venv, *command)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert "pip install 'gitlab-data-registry[server]'" in refused.stderr


def test_the_client_commands_run_end_to_end(
    venv: Path, registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    data = f"{registry.url}/ml/vision/-/data"
    checked = client(venv, "doctor", f"{data}/dvc", "--token", DEV)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "webdav remote  ok" in checked.stdout

    file = tmp_path / "weights.bin"
    file.write_bytes(os.urandom(3 * 1024 * 1024))
    sent = client(venv, "upload", str(file), f"{data}/client/weights.bin", "--token", DEV)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "1 file, 3.1 MB in" in sent.stdout and "stored: client/weights.bin" in sent.stdout
    got = client(venv, "download", f"{data}/client/weights.bin", str(tmp_path / "back.bin"), "--token", DEV)
    assert got.returncode == 0, got.stdout + got.stderr
    assert (tmp_path / "back.bin").read_bytes() == file.read_bytes()

    for body in (b"one\n", b"two\n" * 1000):
        digest = hashlib.md5(body).hexdigest()
        put = requests.put(
            f"{gitlab.url}/api/v4/projects/101/packages/generic/client/files/md5/{digest[:2]}/{digest[2:]}",
            data=body,
            headers={"Private-Token": DEV},
            timeout=30,
        )
        assert put.status_code == 201, put.text
    source = f"{gitlab.url}/api/v4/projects/101/packages/generic/client"
    imported = client(venv, "import-generic-packages", source, f"{data}/imported", "--token", DEV)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "copied 2 files, skipped 0 already there, 0 failed, 0 missing" in imported.stdout
    assert "Everything is in the registry" in imported.stdout
