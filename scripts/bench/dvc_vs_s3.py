"""`dvc push` / `dvc pull` of N files of 4 KB (default 10,000) through the registry (http remote, S3 backend
on SeaweedFS) against DVC's own `s3` remote straight to the same SeaweedFS. Needs a dvc with the dvc-s3
plugin: set DVC_BIN to it (dvc-s3 pins aiobotocore/botocore, so keep it in a venv of its own)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import boto3

from scripts.harness import start_registry, start_seaweedfs, start_simulator

TOKEN = "glpat-developer-token-0002"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10000)
    args = parser.parse_args()
    dvc_bin = os.environ.get("DVC_BIN")
    if not dvc_bin:
        raise SystemExit(
            "set DVC_BIN to a dvc that has dvc-s3 (python -m venv v && v/bin/pip install dvc dvc-s3)"
        )
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    seaweed = start_seaweedfs(root / "seaweedfs")
    gitlab = start_simulator()
    s3 = boto3.session.Session(aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key)
    for bucket in ("bench-registry", "bench-direct"):
        s3.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    registry = start_registry(
        root / "registry",
        gitlab.url,
        serve_args=("--no-access-log",),
        REGISTRY_STORAGE_URL="s3://bench-registry/registry",
        REGISTRY_S3_ENDPOINT_URL=seaweed.endpoint,
        AWS_ACCESS_KEY_ID=seaweed.access_key,
        AWS_SECRET_ACCESS_KEY=seaweed.secret_key,
    )
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root / "site-cache"),
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
    }
    repo = root / "repo"

    def dvc(*argv: str) -> float:
        started = time.perf_counter()
        done = subprocess.run([dvc_bin, *argv], cwd=repo, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"dvc {' '.join(argv)}:\n{done.stdout}\n{done.stderr}")
        return time.perf_counter() - started

    try:
        (repo / "data").mkdir(parents=True)
        for i in range(args.files):
            (repo / "data" / f"{i:05d}.bin").write_bytes(os.urandom(4096))
        dvc("init", "--no-scm")
        dvc("add", "data")
        dvc("remote", "add", "registry", f"{registry.url}/ml/vision/-/data/bench")
        dvc("remote", "modify", "registry", "auth", "custom")
        dvc("remote", "modify", "registry", "custom_auth_header", "Authorization")
        dvc("remote", "modify", "--local", "registry", "password", f"Bearer {TOKEN}")
        dvc("remote", "add", "s3", "s3://bench-direct/bench")
        dvc("remote", "modify", "s3", "endpointurl", seaweed.endpoint)
        times = {}
        for remote in ("s3", "registry"):
            times[f"push {remote}"] = dvc("push", "-r", remote)
        for remote in ("s3", "registry"):
            shutil.rmtree(repo / ".dvc" / "cache")
            shutil.rmtree(repo / "data")
            shutil.rmtree(root / "site-cache", ignore_errors=True)
            times[f"pull {remote}"] = dvc("pull", "-r", remote)
        print(f"{args.files} files of 4 KB, dvc default jobs; registry: S3 on SeaweedFS, 2 gunicorn workers")
        for op, goal in (("push", 1.3), ("pull", 1.2)):
            direct, through = times[f"{op} s3"], times[f"{op} registry"]
            print(
                f"  dvc {op}: s3 remote {direct:6.1f} s, registry {through:6.1f} s,"
                f" ratio {through / direct:.2f} (goal <= {goal})"
            )
    finally:
        registry.stop()
        gitlab.stop()
        seaweed.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
