"""The real dvc (webdav remote, webdav4 underneath) told a folder that does not exist: `dvc ls-url` and
`dvc get-url` fail instead of exiting 0 with nothing; the same commands on a real folder work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from scripts.harness import BIN, RegistryServer
from tests.conftest import TOKENS
from tests.e2e.dav_clients import fresh_folder

pytestmark = pytest.mark.e2e


def dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [str(BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_ls_url_and_get_url_of_a_mistyped_folder_fail(registry: RegistryServer, tmp_path: Path) -> None:
    folder = fresh_folder(registry, "dvc-real")
    stored = requests.put(folder + "real.txt", data=b"real\n", auth=("u", TOKENS["developer"]), timeout=30)
    assert stored.status_code == 201, stored.text
    auth = ["--fs-config", "user=dvc-user", f"password={TOKENS['developer']}"]
    real = folder.replace("http://", "webdav://")
    mistyped = real.rstrip("/") + "-mistyped/"

    listed = dvc(tmp_path, "ls-url", real, *auth)
    assert listed.returncode == 0 and "real.txt" in listed.stdout, listed.stdout + listed.stderr
    fetched = dvc(tmp_path, "get-url", real, str(tmp_path / "real"), *auth)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "real" / "real.txt").read_bytes() == b"real\n"

    listed = dvc(tmp_path, "ls-url", mistyped, *auth)
    assert listed.returncode != 0, (
        f"dvc ls-url of a mistyped folder exited 0:\n{listed.stdout}{listed.stderr}"
    )
    fetched = dvc(tmp_path, "get-url", mistyped, str(tmp_path / "mistyped"), *auth)
    assert fetched.returncode != 0, (
        f"dvc get-url of a mistyped folder exited 0:\n{fetched.stdout}{fetched.stderr}"
    )
    assert not (tmp_path / "mistyped").exists()
