"""`dvc push` / `dvc pull` of N small files (default 2,000) through the registry (http remote, local
storage) against DVC's own local-directory remote on the same disk, with the real dvc client."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from scripts.harness import BIN, start_registry, start_simulator

TOKEN = "glpat-developer-token-0002"


CPU: dict[str, float] = {}


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def dvc(repo: Path, *args: str, server: list[psutil.Process] | None = None, label: str = "") -> float:
    """Run dvc; return wall seconds, and note the CPU seconds of dvc and of the registry under `label`."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(repo.parent / "site-cache")}
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_seconds(server or [])
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if label:
        CPU[label + " dvc"] = (client_after.ru_utime + client_after.ru_stime) - (
            client_before.ru_utime + client_before.ru_stime
        )
        CPU[label + " registry"] = cpu_seconds(server or []) - server_before
    return wall


def forget(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo.parent / "site-cache", ignore_errors=True)  # DVC's remote index lives there


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    gitlab = start_simulator()
    registry = start_registry(root, gitlab.url, serve_args=("--no-access-log",))
    master = psutil.Process(registry.process.pid)
    server = [master, *master.children(recursive=True)]
    try:
        repo = root / "repo"
        (repo / "data").mkdir(parents=True)
        for i in range(args.files):
            (repo / "data" / f"{i:05d}.bin").write_bytes(os.urandom(1024 + i % 3072))
        dvc(repo, "init", "--no-scm")
        dvc(repo, "add", "data")
        times: dict[str, list[float]] = {
            k: [] for k in ("push local", "push registry", "pull local", "pull registry")
        }
        for round_ in range(args.rounds):
            remotes = {
                "local": str(root / f"dvc-remote-{round_}"),
                "registry": f"{registry.url}/ml/vision/-/data/bench-{round_}",
            }
            for name, url in remotes.items():
                dvc(repo, "remote", "add", "-f", name, url)
            dvc(repo, "remote", "modify", "registry", "auth", "custom")
            dvc(repo, "remote", "modify", "registry", "custom_auth_header", "Authorization")
            dvc(repo, "remote", "modify", "--local", "registry", "password", f"Bearer {TOKEN}")
            for name in remotes:
                label = f"push {name}"
                times[label].append(dvc(repo, "push", "-r", name, server=server, label=label))
            for name in remotes:
                forget(repo)
                label = f"pull {name}"
                times[label].append(dvc(repo, "pull", "-r", name, server=server, label=label))
        best = {k: min(v) for k, v in times.items()}
        print(
            f"{args.files} files of 1-4 KiB, dvc default jobs, best of {args.rounds} rounds "
            f"(registry: gunicorn 2 workers x 16 threads, local storage, SQLite)"
        )
        for op in ("push", "pull"):
            local, reg = best[f"{op} local"], best[f"{op} registry"]
            print(
                f"  dvc {op}: local-directory remote {local:6.2f} s, registry {reg:6.2f} s,"
                f" ratio {reg / local:.2f}  (last round CPU: dvc {CPU[f'{op} registry dvc']:.1f} s,"
                f" registry {CPU[f'{op} registry registry']:.1f} s; dvc with the local remote"
                f" {CPU[f'{op} local dvc']:.1f} s)"
            )
        print(f"GitLab API calls: {gitlab.world.total_calls()}")
    finally:
        registry.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
