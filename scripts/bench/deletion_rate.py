"""Deletion throughput of the worker's deletion job (objects per second) for one big project, on local
disk and on S3 (SeaweedFS). Baseline in the same run: deleting an equal project with nothing but the
storage's own calls (unlink per file; boto3 DeleteObjects of 1,000 keys), no index, no progress."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import boto3

from app.components import build_components
from app.db import upgrade
from app.jobs.deletion import delete_queued_projects
from scripts.harness import fresh_database_url, start_seaweedfs
from scripts.seed import seed_project


def run(env: dict[str, str], objects: int) -> tuple[float, float]:
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    parts = build_components(
        {k.removeprefix("REGISTRY_").lower(): v for k, v in env.items() if k.startswith("REGISTRY_")}
    )
    upgrade(parts.settings.effective_database_url)
    print(f"  seeding 2 × {objects:,} objects …", flush=True)
    seed_project(parts.settings, 1, "bench/doomed", objects)
    seed_project(parts.settings, 2, "bench/baseline", objects)
    with parts.lifecycle.writing() as tx:
        tx.request_deletion(1, "bench/doomed", "bench")
    started = time.perf_counter()
    report = delete_queued_projects(parts.lifecycle, parts.storage, batch=1000)
    registry_seconds = time.perf_counter() - started
    assert report.objects == objects and not list(parts.storage.list("projects/1/"))

    keys = [blob.key for blob in parts.storage.list("projects/2/")]
    root = parts.settings.local_storage_root
    started = time.perf_counter()
    if root is not None:
        for key in keys:
            os.unlink(Path(root) / key)
    else:
        bucket, _, prefix = env["REGISTRY_STORAGE_URL"].removeprefix("s3://").partition("/")
        s3 = boto3.client("s3", endpoint_url=env["REGISTRY_S3_ENDPOINT_URL"], region_name="us-east-1")
        for start in range(0, len(keys), 1000):
            batch = [{"Key": f"{prefix}/{key}"} for key in keys[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    baseline_seconds = time.perf_counter() - started
    return objects / registry_seconds, objects / baseline_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--backend", choices=["local", "s3", "both"], default="both")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-delete-"))
    try:
        for backend in ["local", "s3"] if args.backend == "both" else [args.backend]:
            env = {
                "REGISTRY_STORAGE_URL": f"file://{work / backend}",
                "REGISTRY_DATABASE_URL": fresh_database_url(work / backend),
                "REGISTRY_GITLAB_URL": "http://127.0.0.1:9",
            }
            (work / backend).mkdir(parents=True)
            seaweed = None
            if backend == "s3":
                seaweed = start_seaweedfs(work / "seaweedfs")
                boto3.client(
                    "s3",
                    endpoint_url=seaweed.endpoint,
                    region_name="us-east-1",
                    aws_access_key_id=seaweed.access_key,
                    aws_secret_access_key=seaweed.secret_key,
                ).create_bucket(Bucket="bench")
                env |= {
                    "REGISTRY_STORAGE_URL": "s3://bench/registry",
                    "REGISTRY_S3_ENDPOINT_URL": seaweed.endpoint,
                    "AWS_ACCESS_KEY_ID": seaweed.access_key,
                    "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
                }
            print(f"{backend}:", flush=True)
            try:
                ours, baseline = run(env, args.objects)
            finally:
                if seaweed is not None:
                    seaweed.stop()
            print(
                f"  deletion job {ours:,.0f} objects/s; storage calls alone {baseline:,.0f} objects/s;"
                f" ratio {ours / baseline:.2f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
