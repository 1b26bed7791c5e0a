"""The whole comparison in one run: `dvc push`, `dvc status -c` and `dvc pull` through the registry's
`http` and `webdav` remotes (S3 backend on SeaweedFS) against DVC's own `s3` remote straight to the same
SeaweedFS, for many small files (10,000 x 4 KB) and a few big ones (20 x 50 MB); prints the times, the
ratios to the s3 remote and the peak RSS of every registry worker.

Needs one dvc with the s3 and webdav plugins (dvc-s3 pins aiobotocore/botocore, so it lives in a venv of
its own): `python3 -m venv .tools/dvc-s3 && .tools/dvc-s3/bin/pip install dvc dvc-s3 dvc-webdav`, or set
DVC_BIN to another."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import psutil

from scripts.harness import RegistryServer, start_registry, start_seaweedfs, start_simulator

TOKEN = "glpat-developer-token-0002"
REMOTES = ("s3", "http", "webdav")
# --webdav-depth-0: also the webdav remote with webdav4's Client.info() asking `Depth: 0` (it reads only
# the path's own entry; with `Depth: 1` DVC downloads and parses a listing of `files/md5` before every
# upload). Loaded into dvc as a sitecustomize module.
DEPTH_0_CLIENT = """
import webdav4.client as client

def info(self, path):
    result = self.propfind(path, headers={"Depth": "0"})
    return client._prepare_result_info(result.responses[self.join_url(path).path], self.base_url, True)

client.Client.info = info
"""
GOALS = {"push": 1.3, "pull": 1.2}


class PeakRss:
    """Samples the RSS of every gunicorn worker of a registry twice a second; the peak per worker pid."""

    def __init__(self, registry: RegistryServer) -> None:
        self._master = psutil.Process(registry.process.pid)
        self.peaks: dict[int, int] = {}
        self.phase = "start"
        self.by_phase: dict[str, int] = {}  # the highest worker RSS seen while each command ran
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for worker in self._master.children():
                try:
                    rss = worker.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peaks[worker.pid] = max(rss, self.peaks.get(worker.pid, 0))
                self.by_phase[self.phase] = max(rss, self.by_phase.get(self.phase, 0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="small files (default: %(default)s)")
    parser.add_argument("--big-files", type=int, default=20, help="big files (default: %(default)s)")
    parser.add_argument("--big-mb", type=int, default=50, help="size of a big file (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    parser.add_argument("--webdav-depth-0", action="store_true", help="also webdav with a Depth: 0 info()")
    args = parser.parse_args()
    remotes = (*REMOTES, "webdav-depth-0") if args.webdav_depth_0 else REMOTES
    dvc_bin = os.environ.get("DVC_BIN") or str(Path(".tools/dvc-s3/bin/dvc").resolve())
    if not Path(dvc_bin).exists():
        raise SystemExit(__doc__)
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    seaweed = start_seaweedfs(root / "seaweedfs")
    gitlab = start_simulator()
    s3 = boto3.session.Session(aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key)
    for bucket in ("bench-registry", "bench-direct"):
        s3.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    registry = start_registry(
        root / "registry",
        gitlab.url,
        serve_args=("--no-access-log", "--workers", str(args.workers)),
        REGISTRY_STORAGE_URL="s3://bench-registry/registry",
        REGISTRY_S3_ENDPOINT_URL=seaweed.endpoint,
        AWS_ACCESS_KEY_ID=seaweed.access_key,
        AWS_SECRET_ACCESS_KEY=seaweed.secret_key,
    )
    rss = PeakRss(registry)
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root / "site-cache"),
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
    }

    patched = root / "depth-0"
    patched.mkdir()
    (patched / "sitecustomize.py").write_text(DEPTH_0_CLIENT)

    def dvc(repo: Path, *argv: str) -> float:
        rss.phase = f"{repo.name} {' '.join(argv[:3])}"
        started = time.perf_counter()
        run_env = {**env, "PYTHONPATH": str(patched)} if "webdav-depth-0" in argv else env
        done = subprocess.run([dvc_bin, *argv], cwd=repo, env=run_env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"dvc {' '.join(argv)}:\n{done.stdout}\n{done.stderr}")
        return time.perf_counter() - started

    def measure(name: str, count: int, size: int) -> dict[str, float]:
        repo = root / name
        (repo / "data").mkdir(parents=True)
        for i in range(count):
            (repo / "data" / f"{i:05d}.bin").write_bytes(os.urandom(size))
        dvc(repo, "init", "--no-scm")
        dvc(repo, "add", "data")
        base = f"{registry.url}/ml/vision/-/data/{name}"
        dvc(repo, "remote", "add", "http", f"{base}/http")
        dvc(repo, "remote", "modify", "http", "auth", "custom")
        dvc(repo, "remote", "modify", "http", "custom_auth_header", "Authorization")
        dvc(repo, "remote", "modify", "--local", "http", "password", f"Bearer {TOKEN}")
        dvc(repo, "remote", "add", "webdav", f"{base}/webdav".replace("http://", "webdav://"))
        dvc(repo, "remote", "modify", "--local", "webdav", "token", TOKEN)
        dvc(repo, "remote", "add", "webdav-depth-0", f"{base}/webdav-depth-0".replace("http://", "webdav://"))
        dvc(repo, "remote", "modify", "--local", "webdav-depth-0", "token", TOKEN)
        dvc(repo, "remote", "add", "s3", f"s3://bench-direct/{name}")
        dvc(repo, "remote", "modify", "s3", "endpointurl", seaweed.endpoint)
        times = {}
        for remote in remotes:  # each remote starts empty
            times[f"push {remote}"] = dvc(repo, "push", "-r", remote)
        for remote in remotes:
            times[f"status {remote}"] = dvc(repo, "status", "-c", "-r", remote)
        for remote in remotes:
            shutil.rmtree(repo / ".dvc" / "cache")
            shutil.rmtree(repo / "data")
            shutil.rmtree(root / "site-cache", ignore_errors=True)
            times[f"pull {remote}"] = dvc(repo, "pull", "-r", remote)
        shutil.rmtree(repo)
        return times

    try:
        results = {
            f"{args.files:,} x 4 KB": measure("small", args.files, 4096),
            f"{args.big_files} x {args.big_mb} MB": measure("big", args.big_files, args.big_mb << 20),
        }
    finally:
        rss.stop()
        registry.stop()
        gitlab.stop()
        seaweed.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{datetime.now(UTC):%Y-%m-%d}: dvc (defaults) through the registry (S3 backend on SeaweedFS,"
        f" {args.workers} gunicorn workers) vs DVC's s3 remote straight to the same SeaweedFS"
    )
    for dataset, times in results.items():
        print(f"  {dataset}:")
        for op in ("push", "status", "pull"):
            direct = times[f"{op} s3"]
            cells = [f"s3 {direct:6.1f} s"]
            for remote in remotes[1:]:
                through = times[f"{op} {remote}"]
                cells.append(f"{remote} {through:6.1f} s ({through / direct:.2f}x)")
            goal = f"  goal <= {GOALS[op]}x" if op in GOALS else ""
            print(f"    {op:<6} " + ", ".join(cells) + goal)
    peaks = ", ".join(f"{peak / 2**20:.0f}" for peak in sorted(rss.peaks.values()))
    print(f"  peak RSS per registry worker: {peaks} MiB (goal < 200)")
    if os.environ.get("BENCH_RSS_PHASES"):
        print({k: v >> 20 for k, v in rss.by_phase.items()})
    phase, peak = max(rss.by_phase.items(), key=lambda item: item[1])
    print(f"  highest during: dvc {phase} ({peak / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
