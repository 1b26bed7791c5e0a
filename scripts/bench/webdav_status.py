"""Requests a `dvc status -c` costs for N pushed objects (default 20,000): webdav remote (lists prefixes)
against http remote (one GET per object). The .dir is deleted from the remote first, so DVC cannot take
its "the .dir is there, so are its files" shortcut and must really check every object."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from scripts.harness import BIN, start_registry, start_simulator

DEVELOPER, MAINTAINER = "glpat-developer-token-0002", "glpat-maintainer-token-0001"


def dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(repo.parent / "site-cache")}
    done = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    gitlab = start_simulator()
    registry = start_registry(root, gitlab.url)
    try:
        repo = root / "repo"
        (repo / "data").mkdir(parents=True)
        for i in range(args.files):
            (repo / "data" / f"{i:06d}").write_bytes(i.to_bytes(8, "big") * 8)
        dvc(repo, "init", "--no-scm")
        dvc(repo, "add", "data")
        url = f"{registry.url}/ml/vision/-/data/status-bench"
        dvc(repo, "remote", "add", "http", url)
        dvc(repo, "remote", "modify", "http", "auth", "custom")
        dvc(repo, "remote", "modify", "http", "custom_auth_header", "Authorization")
        dvc(repo, "remote", "modify", "--local", "http", "password", f"Bearer {DEVELOPER}")
        dvc(repo, "remote", "add", "dav", url.replace("http://", "webdav://"))
        dvc(repo, "remote", "modify", "--local", "dav", "token", DEVELOPER)
        started = time.perf_counter()
        dvc(repo, "push", "-r", "http", "-j", "16")
        print(f"pushed {args.files} objects in {time.perf_counter() - started:.1f} s")

        manifest = next((repo / ".dvc" / "cache" / "files" / "md5").rglob("*.dir"))
        md5 = manifest.parent.name + manifest.name.removesuffix(".dir")
        assert hashlib.md5(manifest.read_bytes()).hexdigest() == md5
        requests.delete(
            f"{url}/files/md5/{md5[:2]}/{md5[2:]}.dir",
            timeout=30,
            headers={"Authorization": f"Bearer {MAINTAINER}"},
        ).raise_for_status()

        for remote in ("dav", "http"):
            shutil.rmtree(root / "site-cache", ignore_errors=True)  # DVC's own remote index
            before = len(registry.log_text().splitlines())
            started = time.perf_counter()
            dvc(repo, "status", "-c", "-r", remote)
            elapsed = time.perf_counter() - started
            lines = registry.log_text().splitlines()[before:]
            by_method: dict[str, int] = {}
            for line in lines:
                if '"' in line:
                    method = line.split('"')[1].split(" ")[0]
                    by_method[method] = by_method.get(method, 0) + 1
            print(
                f"dvc status -c, {remote:>4} remote: {sum(by_method.values()):6d} requests {by_method}"
                f" in {elapsed:.1f} s"
            )
    finally:
        registry.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
