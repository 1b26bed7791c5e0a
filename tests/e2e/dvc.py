"""The real dvc CLI in a throwaway workspace, for the end-to-end tests."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

from scripts.harness import BIN


class Dvc:
    """A DVC workspace and a way to run the real dvc CLI in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(root.parent / f"{root.name}-site-cache"),
        }

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "dvc"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if ok:
            assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def add_remote(
        self, name: str, url: str, *, auth: str, token: str, method: str = "POST", user: str = "ml-engineer"
    ) -> None:
        """A remote with `auth custom` + `Authorization: Bearer` (auth="bearer") or `auth basic`."""
        self.run("remote", "add", name, url)
        if auth == "bearer":
            self.run("remote", "modify", name, "auth", "custom")
            self.run("remote", "modify", name, "custom_auth_header", "Authorization")
            self.run("remote", "modify", "--local", name, "password", f"Bearer {token}")
        else:
            self.run("remote", "modify", name, "auth", "basic")
            self.run("remote", "modify", name, "user", user)
            self.run("remote", "modify", "--local", name, "password", token)
        if method != "POST":
            self.run("remote", "modify", name, "method", method)

    def forget_local_data(self) -> None:
        shutil.rmtree(self.root / ".dvc" / "cache", ignore_errors=True)
        shutil.rmtree(self.root / "data", ignore_errors=True)
        (self.root / "big.bin").unlink(missing_ok=True)


def workspace(tmp_path: Path, dataset: Path) -> Dvc:
    root = tmp_path / "repo"
    shutil.copytree(dataset, root)
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data", "big.bin")
    return dvc


def same_tree(left: Path, right: Path) -> bool:
    compare = filecmp.dircmp(left, right)
    return (
        not compare.left_only
        and not compare.right_only
        and not compare.diff_files
        and not compare.funny_files
        and all(filecmp.cmp(left / f, right / f, shallow=False) for f in compare.common_files)
    )
