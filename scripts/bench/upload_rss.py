"""Peak RSS of the registry's gunicorn processes during one streamed (chunked) upload, default 1 GiB, to
a DVC content-addressed path (md5 checked), and the upload's throughput."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import requests

from scripts.harness import start_registry, start_simulator

TOKEN = "glpat-developer-token-0002"
CHUNK = 5 * 1024 * 1024  # what DVC sends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
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
    registry = start_registry(root, gitlab.url, serve_args=("--no-access-log",))
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
    finally:
        registry.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
