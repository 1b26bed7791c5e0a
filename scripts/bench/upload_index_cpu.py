"""CPU per small upload in the write path (Uploads.upload: admission, index look-ups, the project's write
transaction), in-process on the local backend so the bucket costs next to nothing: new 4 KB content
addresses, then the same ones again (DVC re-sends what it is unsure of), as the median of batches of
100, on an SQLite file and on PostgreSQL (--postgres URL or REGISTRY_TEST_POSTGRES_URL). --profile N
prints cProfile's top N entries by own CPU time."""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import create_app
from app.db import upgrade
from app.model.identity import Credential, CredentialKind
from app.model.projects import ProjectRef
from app.settings import load_settings
from scripts.harness import fresh_database_url, start_simulator

TOKEN = "glpat-developer-token-0002"  # a Developer of ml/vision in the simulator's seed
REF = ProjectRef(path="ml/vision")


def content_addressed(size: int, count: int, seed: str) -> list[tuple[str, bytes]]:
    """count distinct bodies of size bytes, each at its DVC content address."""
    bodies = []
    for i in range(count):
        stem = hashlib.sha256(f"{seed}-{i}".encode()).digest()
        body = (stem * (size // len(stem) + 1))[:size]
        md5 = hashlib.md5(body).hexdigest()  # DVC's content address
        bodies.append((f"dvc/files/md5/{md5[:2]}/{md5[2:]}", body))
    return bodies


def cpu_per_call(calls: list[Callable[[], None]], profile: int) -> float:
    """Milliseconds of this process's CPU per call: the median over batches of 100 calls (others share
    these cores: a batch that another process's cache misses or a page-cache flush hit does not count),
    printing cProfile's top entries (by own CPU time) when asked."""
    profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not waits
    batches = []
    for start in range(0, len(calls), 100):
        batch = calls[start : start + 100]
        began = time.process_time()
        if profiler:
            profiler.enable()
        for call in batch:
            call()
        if profiler:
            profiler.disable()
        batches.append((time.process_time() - began) * 1000 / len(batch))
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(profile)
        print(out.getvalue())
    return statistics.median(batches)


def bench(database_url: str, root: Path, args: argparse.Namespace, simulator_url: str) -> dict[str, float]:
    settings: dict[str, Any] = {
        "storage_url": f"file://{root / 'storage'}",
        "database_url": database_url,
        "gitlab_url": simulator_url,
        "default_quota": args.quota,
    }
    upgrade(load_settings(environ={}, overrides=settings).effective_database_url)
    uploads = create_app(settings).extensions["data_registry"].uploads
    credential = Credential(CredentialKind.ACCESS_TOKEN, TOKEN)

    def uploading(objects: list[tuple[str, bytes]], created: bool) -> list[Callable[[], None]]:
        def call(path: str, body: bytes) -> Callable[[], None]:
            def run() -> None:
                if uploads.upload(credential, REF, path, [body]).created is not created:
                    raise SystemExit(f"{path}: expected created={created}")

            return run

        return [call(path, body) for path, body in objects]

    warm = content_addressed(args.size, 200, f"warm-{root.name}")
    for call in uploading(warm, True) + uploading(warm, False):  # auth cache, pool, statements, project row
        call()
    fresh = content_addressed(args.size, args.count, f"new-{root.name}")
    return {
        "new": cpu_per_call(uploading(fresh, True), args.profile),
        "again": cpu_per_call(uploading(fresh, False), args.profile),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--quota", default="0", help="the default quota (0: none, DVC's common case)")
    parser.add_argument("--postgres", default=os.environ.get("REGISTRY_TEST_POSTGRES_URL", ""))
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N entries")
    args = parser.parse_args()
    simulator = start_simulator()
    try:
        for name in ("sqlite", "postgresql"):
            if args.only not in (None, name) or (name == "postgresql" and not args.postgres):
                continue
            root = Path(tempfile.mkdtemp(prefix=f"bench-upload-index-{name}-"))
            if name == "postgresql":
                os.environ["REGISTRY_TEST_POSTGRES_URL"] = args.postgres
                url = fresh_database_url(root)
            else:
                url = f"sqlite:///{root / 'registry.db'}"  # a file, as `data-registry serve` uses it
            cpu = bench(url, root, args, simulator.url)
            print(
                f"{name:10} CPU per upload: new {cpu['new']:.3f} ms, again {cpu['again']:.3f} ms"
                f" ({args.count} x {args.size} B)",
                flush=True,
            )
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
