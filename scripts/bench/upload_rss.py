"""Peak RSS of the registry's gunicorn processes during one streamed (chunked) upload, default 1 GiB, to
a DVC content-addressed path (md5 checked), and the upload's throughput. With --backend s3 the registry
stores into SeaweedFS, and the same bytes are also uploaded straight to SeaweedFS with boto3's multipart
upload (8 MiB parts) as the baseline."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import requests
from boto3.s3.transfer import TransferConfig

from scripts.harness import SeaweedFS, start_registry, start_seaweedfs, start_simulator

TOKEN = "glpat-developer-token-0002"
CHUNK = 5 * 1024 * 1024  # what DVC sends


def s3_env(seaweed: SeaweedFS) -> dict[str, str]:
    session = boto3.session.Session(
        aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key
    )
    session.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1").create_bucket(
        Bucket="bench-registry"
    )
    return {
        "REGISTRY_STORAGE_URL": "s3://bench-registry/registry",
        "REGISTRY_S3_ENDPOINT_URL": seaweed.endpoint,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
    }


class _Repeating(io.RawIOBase):
    """The same bytes as the registry upload, as a file for boto3, without holding them in memory."""

    def __init__(self, sizes: list[int], block: bytes) -> None:
        self._parts = iter(block[:n] for n in sizes)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._parts, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def direct_multipart(seaweed: SeaweedFS, env: dict[str, str], sizes: list[int], block: bytes) -> float:
    """Seconds for boto3's own multipart upload (8 MiB parts, 4 threads) of the same bytes."""
    session = boto3.session.Session(
        aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key
    )
    client = session.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1")
    config = TransferConfig(multipart_chunksize=8 * 2**20, max_concurrency=4)
    started = time.perf_counter()
    client.upload_fileobj(
        io.BufferedReader(_Repeating(sizes, block), 2**20), "bench-registry", "direct", Config=config
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--backend", choices=["local", "s3"], default="local")
    args = parser.parse_args()

    block = os.urandom(CHUNK)
    size = args.mib * 2**20
    sizes = [CHUNK] * (size // CHUNK) + ([size % CHUNK] if size % CHUNK else [])
    digest = hashlib.md5()
    for n in sizes:
        digest.update(block[:n])
    md5 = digest.hexdigest()

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    gitlab = start_simulator()
    seaweed = start_seaweedfs(root / "seaweedfs") if args.backend == "s3" else None
    env = s3_env(seaweed) if seaweed else {}
    registry = start_registry(root, gitlab.url, serve_args=("--no-access-log",), **env)
    try:
        master = psutil.Process(registry.process.pid)
        processes = [master, *master.children(recursive=True)]
        url = f"{registry.url}/ml/vision/-/data/bench/files/md5/{md5[:2]}/{md5[2:]}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        requests.head(url, headers=headers, timeout=10)  # warm the auth cache and imports
        idle = {p.pid: p.memory_info().rss for p in processes}
        peak = dict(idle)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for p in processes:
                    peak[p.pid] = max(peak[p.pid], p.memory_info().rss)
                time.sleep(0.02)

        def body() -> Iterator[bytes]:
            for n in sizes:
                yield block[:n] if n < CHUNK else block

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        response = requests.put(url, data=body(), headers=headers, timeout=600)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        response.raise_for_status()

        print(
            f"streamed upload of {size / 2**20:.0f} MiB (chunked, {CHUNK // 2**20} MiB chunks): "
            f"HTTP {response.status_code} in {elapsed:.1f} s = {size / 2**20 / elapsed:.0f} MiB/s"
        )
        for p in processes:
            role = "master" if p.pid == master.pid else "worker"
            print(
                f"  {role} {p.pid}: idle {idle[p.pid] / 2**20:6.1f} MB, peak {peak[p.pid] / 2**20:6.1f} MB"
                f" (+{(peak[p.pid] - idle[p.pid]) / 2**20:.1f})"
            )
        print(f"peak RSS of the busiest process: {max(peak.values()) / 2**20:.1f} MB (goal <= 150 MB)")
        if seaweed:
            direct = direct_multipart(seaweed, env, sizes, block)
            print(
                f"boto3 multipart straight to SeaweedFS: {size / 2**20 / direct:.0f} MiB/s;"
                f" through the registry: {(size / elapsed) / (size / direct):.2f} of that"
            )
    finally:
        if seaweed:
            seaweed.stop()
        registry.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
