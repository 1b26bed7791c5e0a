"""A DVC push into a project over its quota (http and webdav remotes): DVC prints the quota message,
nothing partial is kept, pulls keep working, and raising the quota with the CLI lets the push finish."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.harness import BIN, RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS
from tests.e2e.dvc import Dvc

pytestmark = pytest.mark.e2e


@pytest.fixture
def registry(tmp_path: Path, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path / "registry", gitlab.url, REGISTRY_DEFAULT_QUOTA="1MiB")
    yield server
    server.stop()


@pytest.mark.parametrize("remote", ["http", "webdav"])
def test_quota(registry: RegistryServer, tmp_path: Path, remote: str) -> None:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    for i in range(10):
        (root / "data" / f"{i}.bin").write_bytes(os.urandom(20_000))
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data")
    url = f"{registry.url}/ml/vision/-/data/quota"
    if remote == "http":
        dvc.add_remote("r", url, auth="bearer", token=TOKENS["developer"])
    else:
        dvc.run("remote", "add", "r", url.replace("http://", "webdav://"))
        dvc.run("remote", "modify", "--local", "r", "token", TOKENS["developer"])
    dvc.run("push", "-r", "r")  # 200 KB: fits

    dvc.run("add", "big.bin")
    pushed = dvc.run("push", "-r", "r", ok=False)
    assert pushed.returncode != 0
    shown = pushed.stdout + pushed.stderr
    assert re.search(r"413.{1,12}Quota exceeded for ml/vision: 195\.\d KiB of 1\.0 MiB used", shown), shown
    keys = registry.stored_keys("projects/101/quota/")
    assert len(keys) == 11  # the 10 files and their .dir; nothing of big.bin

    original, big = (root / "data" / "3.bin").read_bytes(), (root / "big.bin").read_bytes()
    dvc.forget_local_data()
    dvc.run("pull", "-r", "r", "data.dvc")  # reads still work over quota
    assert (root / "data" / "3.bin").read_bytes() == original

    raised = subprocess.run(
        [str(BIN / "data-registry"), "quota", "set", "101", "10MiB"],
        env=registry.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "quota 10.0 MiB (set for this project)" in raised.stdout
    (root / "big.bin").write_bytes(big)
    dvc.run("add", "big.bin")
    assert "1 file pushed" in dvc.run("push", "-r", "r").stdout
    assert len(registry.stored_keys("projects/101/quota/")) == 12
