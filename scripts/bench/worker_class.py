"""The registry's gunicorn worker (requests gathered in the poller, paced body reads) against plain
gthread, both running at once with the same settings: GET and HEAD requests per second, a `dvc push` of
2,000 small files, and /-/health latency under 256 slow anonymous connections. Needs wrk and ab."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import requests

from scripts.bench.dvc_push_pull import dvc
from scripts.bench.get_head_rps import TOKEN, ab_head, wrk
from scripts.harness import RegistryServer, start_registry, start_simulator
from scripts.slow_clients import HealthProbe, SlowClients, workers_rss

CLASSES = {"gthread": "gthread", "registry": "app.gunicorn_worker.GuardedThreadWorker"}


def object_url(registry: RegistryServer) -> str:
    body = os.urandom(4096)
    md5 = hashlib.md5(body).hexdigest()
    url = f"{registry.url}/ml/vision/-/data/bench/files/md5/{md5[:2]}/{md5[2:]}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    requests.put(url, data=body, headers=headers, timeout=10).raise_for_status()
    for _ in range(50):  # warm the auth cache of every worker
        requests.head(url, headers=headers, timeout=10).raise_for_status()
    return url


def push_seconds(root: Path, registry: RegistryServer, name: str) -> float:
    repo = root / "repo"
    dvc(repo, "remote", "add", "-f", "registry", f"{registry.url}/ml/vision/-/data/{name}")
    dvc(repo, "remote", "modify", "registry", "auth", "custom")
    dvc(repo, "remote", "modify", "registry", "custom_auth_header", "Authorization")
    dvc(repo, "remote", "modify", "--local", "registry", "password", f"Bearer {TOKEN}")
    return dvc(repo, "push", "-r", "registry")


def under_slow_clients(registry: RegistryServer, seconds: float) -> str:
    before = workers_rss(registry.process.pid)
    probe = HealthProbe(registry.url)
    with SlowClients(registry.url, count=256, interval=1.0):
        time.sleep(2)
        probe.run_for(seconds)
        after = workers_rss(registry.process.pid)
    return (
        f"health p99 {probe.p99():6.3f} s, max {max(probe.latencies):6.3f} s, {probe.failures} of"
        f" {len(probe.latencies)} failed (5 s timeout), worker RSS +{(after - before) / 2**20:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("ab"):
        raise SystemExit("wrk and ab are required: apt-get install wrk apache2-utils")

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    gitlab = start_simulator()
    servers = {
        name: start_registry(
            root / name,
            gitlab.url,
            serve_args=("--no-access-log", "--worker-class", worker_class),
            REGISTRY_RATE_LIMIT="0",
        )
        for name, worker_class in CLASSES.items()
    }
    try:
        (root / "repo" / "data").mkdir(parents=True)
        for i in range(args.files):
            (root / "repo" / "data" / f"{i:05d}.bin").write_bytes(os.urandom(1024 + i % 3072))
        dvc(root / "repo", "init", "--no-scm")
        dvc(root / "repo", "add", "data")
        urls = {name: object_url(server) for name, server in servers.items()}
        runs: dict[str, dict[str, list[float]]] = {
            name: {"GET": [], "HEAD": [], "push": []} for name in servers
        }
        for round_ in range(args.rounds):  # interleaved, so background load hits both alike
            for name, server in servers.items():
                runs[name]["GET"].append(wrk(urls[name], args.seconds, args.connections))
                runs[name]["HEAD"].append(ab_head(urls[name], args.seconds, args.connections))
                runs[name]["push"].append(push_seconds(root, server, f"push-{round_}"))
        print(
            f"gunicorn 2 workers x 16 threads each; GET/HEAD: {args.connections} connections,"
            f" {args.seconds} s per run; push: {args.files} files of 1-4 KiB;"
            f" best of {args.rounds} interleaved rounds"
        )
        best = {
            name: {"GET": max(r["GET"]), "HEAD": max(r["HEAD"]), "push": min(r["push"])}
            for name, r in runs.items()
        }
        for measure, unit in (("GET", "req/s"), ("HEAD", "req/s"), ("push", "s")):
            old, new = best["gthread"][measure], best["registry"][measure]
            print(
                f"  {measure:>4}: gthread {old:8.1f} {unit}, registry worker {new:8.1f} {unit},"
                f" ratio {new / old:.2f}"
            )
        for name, server in servers.items():  # one after the other: each gets the machine to itself
            print(f"  256 slow anonymous connections, {name}: {under_slow_clients(server, 25)}")
    finally:
        for server in servers.values():
            server.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
