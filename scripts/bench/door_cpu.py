"""The S3 door's registry CPU per request (user and system, every worker) and its page faults for
PutObject and GetObject of --size bytes (4 KB: small files; --size 52428800 --count 10 --warm 2: big
ones): 8 boto3 clients (DVC's default jobs) against the registry next to SeaweedFS, no delay. With
--profile DIR, py-spy (PY_SPY, else on PATH) records the first worker meanwhile: DIR/<operation>.txt,
its GIL-holding stacks in py-spy's raw (collapsed) format (--on-cpu: every thread on CPU, hashing
without the GIL too)."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import psutil
from botocore.config import Config

from scripts.bench.request_floor import worker_cpu
from scripts.harness import start_registry, start_seaweedfs, start_simulator

TOKEN = "glpat-developer-token-0002"
PROJECT = "ml/vision"


def worker_faults(pid: int) -> int:
    """Minor page faults the master's workers made so far (memory freshly mapped, or given back and
    taken again: system CPU for every page)."""
    return sum(_minor_faults(worker.pid) for worker in psutil.Process(pid).children())


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warm", type=int, default=100, help="requests before measuring")
    parser.add_argument("--profile", default="", help="directory for py-spy profiles")
    parser.add_argument(
        "--on-cpu", action="store_true", help="profile every thread on CPU (hashing without the GIL too)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-door-cpu-"))
    seaweed = start_seaweedfs(root / "seaweedfs")
    gitlab = start_simulator()
    try:
        s3 = boto3.session.Session(
            aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key
        ).client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="bench-registry")
        server = start_registry(
            root / "registry",
            gitlab.url,
            serve_args=("--no-access-log", "--workers", str(args.workers)),
            REGISTRY_STORAGE_URL="s3://bench-registry/registry",
            REGISTRY_S3_ENDPOINT_URL=seaweed.endpoint,
            REGISTRY_DATABASE_URL=f"sqlite:///{root / 'registry.db'}",
            REGISTRY_SECRET_KEY="bench-secret-key-0123456789",
            AWS_ACCESS_KEY_ID=seaweed.access_key,
            AWS_SECRET_ACCESS_KEY=seaweed.secret_key,
        )
        session = boto3.session.Session(aws_access_key_id=TOKEN, aws_secret_access_key=TOKEN)
        clients = [
            session.client(
                "s3",
                endpoint_url=f"{server.url}/{PROJECT}/-/s3",
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}),
            )
            for _ in range(args.jobs)
        ]
        bodies = [os.urandom(args.size) for _ in range(args.count + args.warm)]  # the last ones warm up
        digests = [hashlib.md5(b).hexdigest() for b in bodies]
        keys = [f"files/md5/{d[:2]}/{d[2:]}" for d in digests]

        def put(i: int) -> None:
            clients[i % args.jobs].put_object(Bucket="bench", Key=keys[i], Body=bodies[i])

        def get(i: int) -> None:
            got = clients[i % args.jobs].get_object(Bucket="bench", Key=keys[i])["Body"].read()
            assert len(got) == args.size

        for name, op in (("warm", put), ("PutObject", put), ("GetObject", get)):
            indexes = range(args.count, args.count + args.warm) if name == "warm" else range(args.count)
            n = len(indexes)
            spy = None
            if args.profile and name != "warm":
                pid = psutil.Process(server.process.pid).children()[0].pid
                spy = subprocess.Popen(
                    [
                        os.environ.get("PY_SPY", "py-spy"),
                        "record",
                        "-p",
                        str(pid),
                        "-o",
                        f"{args.profile}/{name}.txt",
                        "-r",
                        "500",
                        "-f",
                        "raw",
                        "--nonblocking",
                        *([] if args.on_cpu else ["--gil"]),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
            faults = worker_faults(server.process.pid)
            user, system = worker_cpu(server.process.pid)
            started = time.perf_counter()
            with ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(op, indexes))
            seconds = time.perf_counter() - started
            user2, system2 = worker_cpu(server.process.pid)
            if spy:
                spy.send_signal(2)
                spy.wait()
            if name != "warm":
                print(
                    f"{name:<10} {n / seconds:7.0f} req/s; registry CPU per request: user"
                    f" {(user2 - user) * 1000 / n:.2f} ms, system {(system2 - system) * 1000 / n:.2f} ms;"
                    f" page faults {(worker_faults(server.process.pid) - faults) / n:.0f}"
                )
        server.stop()
    finally:
        gitlab.stop()
        seaweed.stop()
        shutil.rmtree(root, ignore_errors=True)  # SeaweedFS's volumes: 1.2 GB after a 50 MB run


if __name__ == "__main__":
    main()
