"""The real `helm` binary for the chart tests (scripts/install-helm.sh puts it in .tools/bin), run with its
cache, config and data homes in a temporary directory so that no test reads or writes the user's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def helm_binary() -> str:
    """The path of helm; a skip on a laptop without it, a failure in CI."""
    found = shutil.which("helm", path=str(ROOT / ".tools" / "bin")) or shutil.which("helm")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("helm is missing in CI: scripts/install-helm.sh did not run")
        pytest.skip("no helm binary: run scripts/install-helm.sh")
    return found


def run_helm(*args: str, home: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run `helm ARGS` in `cwd` with its homes under `home`."""
    homes = {f"HELM_{d}_HOME": str(home / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}
    return subprocess.run(
        [helm_binary(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **homes},
        cwd=cwd,
        timeout=120,
    )
