"""Data-plane GET (302 to a signed URL) and HEAD requests per second with a warm auth cache, against the
trivial /-/health endpoint of the same app under the same gunicorn settings.

GET is measured with wrk; HEAD with ab (`-i`), because wrk waits for a body after a HEAD that announces a
Content-Length. Each ratio compares numbers of one tool. Needs Debian's wrk and apache2-utils."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from scripts.harness import start_registry, start_simulator

TOKEN = "glpat-developer-token-0002"


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: Bearer {TOKEN}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"GET {url}: {non2xx.group(1)} error responses\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def ab_head(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        [
            "ab",
            "-i",
            "-k",
            "-q",
            "-c",
            str(connections),
            "-t",
            str(seconds),
            "-n",
            "10000000",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if (failed and int(failed.group(1))) or non2xx:
        raise SystemExit(f"HEAD {url}: errors\n{out}")
    match = re.search(r"Requests per second:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("ab"):
        raise SystemExit("wrk and ab are required: apt-get install wrk apache2-utils")

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    gitlab = start_simulator()
    # the rate limit (per credential) is for clients; this measures the server itself
    registry = start_registry(  # GET answers the 302 it measures whatever the object size (no auto mode)
        root,
        gitlab.url,
        serve_args=("--no-access-log",),
        REGISTRY_RATE_LIMIT="0",
        REGISTRY_DOWNLOAD_MODE="redirect",
    )
    try:
        body = os.urandom(4096)
        md5 = hashlib.md5(body).hexdigest()
        url = f"{registry.url}/ml/vision/-/data/bench/files/md5/{md5[:2]}/{md5[2:]}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        requests.put(url, data=body, headers=headers, timeout=10).raise_for_status()
        for _ in range(50):  # warm the auth cache of every worker
            requests.head(url, headers=headers, timeout=10).raise_for_status()

        health = f"{registry.url}/-/health"
        runs: dict[str, list[float]] = {
            "GET trivial": [],
            "GET data": [],
            "HEAD trivial": [],
            "HEAD data": [],
        }
        for _ in range(args.rounds):  # interleaved, so background load hits all of them alike
            runs["GET trivial"].append(wrk(health, args.seconds, args.connections))
            runs["GET data"].append(wrk(url, args.seconds, args.connections))
            runs["HEAD trivial"].append(ab_head(health, args.seconds, args.connections))
            runs["HEAD data"].append(ab_head(url, args.seconds, args.connections))
        best = {name: max(values) for name, values in runs.items()}
        print(
            f"gunicorn gthread, 2 workers x 16 threads, {args.connections} connections, {args.seconds} s"
            f" per run, best of {args.rounds} interleaved rounds"
        )
        for name, values in runs.items():
            baseline = best[name.split()[0] + " trivial"]
            listed = ", ".join(f"{v:.0f}" for v in values)
            print(f"{name:>13}: {best[name]:7.0f} req/s  (runs: {listed})  ratio {best[name] / baseline:.2f}")
        print(f"GitLab API calls during the benchmark: {gitlab.world.total_calls()}")
    finally:
        registry.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
