"""The registry's CPU per small request (user + system of every gunicorn worker, psutil) on the local backend,
so that the bucket costs nothing: GET /-/health (the floor), the S3 door's HeadObject and GetObject of a
4 KB object (signed by botocore in the client; client CPU does not count) and the data plane's GET of the
same object, each from 8 keep-alive client threads. Rounds interleave the cases; medians are printed.

--baseline DIR serves a second registry from the `app` package under DIR (a copy of the tree before a
change) and alternates the two in every round, so both see the same load from the machine's other jobs.
With --profile DIR, py-spy (--gil, raw) records the first worker during each case of the last round."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil
import requests
from botocore.config import Config

from scripts.harness import RegistryServer, start_registry, start_simulator

TOKEN = "glpat-developer-token-0002"
PROJECT = "ml/vision"
BUCKET = "bench"
CASES = ("health", "HeadObject", "GetObject", "data GET")


def worker_cpu(pid: int) -> tuple[float, float]:
    """Seconds of user and system CPU the master's worker processes used so far."""
    user = system = 0.0
    for worker in psutil.Process(pid).children():
        times = worker.cpu_times()
        user, system = user + times.user, system + times.system
    return user, system


@dataclass
class Target:
    """One registry under test, its per-thread clients and what each case cost it per request (ms)."""

    name: str
    server: RegistryServer
    body: bytes
    key: str
    local: threading.local = field(default_factory=threading.local)
    total: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CASES})
    system: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CASES})

    def http(self) -> requests.Session:
        if not hasattr(self.local, "http"):
            self.local.http = requests.Session()
            self.local.http.headers["Authorization"] = f"Bearer {TOKEN}"
        session: requests.Session = self.local.http
        return session

    def s3(self) -> Any:
        if not hasattr(self.local, "s3"):
            self.local.s3 = boto3.session.Session(
                aws_access_key_id=TOKEN, aws_secret_access_key=TOKEN
            ).client(
                "s3",
                endpoint_url=f"{self.server.url}/{PROJECT}/-/s3",
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            )
        return self.local.s3

    def request(self, case: str) -> None:
        data_url = f"{self.server.url}/{PROJECT}/-/data/{BUCKET}/{self.key}"
        if case == "health":
            assert self.http().get(f"{self.server.url}/-/health", timeout=30).status_code == 200
        elif case == "HeadObject":
            assert self.s3().head_object(Bucket=BUCKET, Key=self.key)["ContentLength"] == len(self.body)
        elif case == "GetObject":
            assert self.s3().get_object(Bucket=BUCKET, Key=self.key)["Body"].read() == self.body
        else:
            got = self.http().get(data_url, timeout=30, allow_redirects=False)
            assert got.status_code == 200 and got.content == self.body, got.status_code


def start_target(name: str, root: Path, gitlab_url: str, serve_args: tuple[str, ...], app_dir: str) -> Target:
    env = {"PYTHONPATH": app_dir, "GUNICORN_CMD_ARGS": f"--chdir {app_dir}"} if app_dir else {}
    server = start_registry(root / name, gitlab_url, serve_args=serve_args, **env)
    body = os.urandom(4096)
    md5 = hashlib.md5(body).hexdigest()
    key = f"files/md5/{md5[:2]}/{md5[2:]}"
    url = f"{server.url}/{PROJECT}/-/data/{BUCKET}/{key}"
    requests.put(url, data=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).raise_for_status()
    return Target(name, server, body, key)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000, help="requests per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=8, help="keep-alive client threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--baseline", default="", help="a directory holding the baseline's app package")
    parser.add_argument("--profile", default="", help="directory for py-spy raw profiles (last round)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-request-floor-"))
    serve_args = ("--workers", str(args.workers)) + (("--no-access-log",) if args.no_access_log else ())
    gitlab = start_simulator()
    targets: list[Target] = []
    try:
        targets.append(start_target("this", root, gitlab.url, serve_args, ""))
        if args.baseline:
            targets.append(start_target("baseline", root, gitlab.url, serve_args, args.baseline))
        with ThreadPoolExecutor(args.jobs) as pool:

            def run(target: Target, case: str, times: int) -> None:
                list(pool.map(lambda _: target.request(case), range(times)))

            for target in targets:  # warm: connections, grant cache, imports
                for case in CASES:
                    run(target, case, 200)
            for round_ in range(args.rounds):
                for case in CASES:
                    for target in targets if round_ % 2 == 0 else targets[::-1]:
                        spy = None
                        if args.profile and round_ == args.rounds - 1:
                            spy = start_profile(target, case, Path(args.profile))
                        user, system = worker_cpu(target.server.process.pid)
                        run(target, case, args.count)
                        user2, system2 = worker_cpu(target.server.process.pid)
                        target.total[case].append((user2 - user + system2 - system) * 1000 / args.count)
                        target.system[case].append((system2 - system) * 1000 / args.count)
                        if spy is not None:
                            spy.send_signal(2)
                            spy.wait()
        for target in targets:
            print(f"{target.name}: worker CPU per request, median of {args.rounds} rounds (each round)")
            for case in CASES:
                rounds = " ".join(f"{v:.3f}" for v in target.total[case])
                print(
                    f"  {case:<11} {statistics.median(target.total[case]):.3f} ms ({rounds});"
                    f" system {statistics.median(target.system[case]):.3f} ms"
                )
        if len(targets) == 2:  # rounds are paired in time: their ratios cancel most of the machine's noise
            print("this / baseline, median of the rounds' ratios")
            for case in CASES:
                ratios = [a / b for a, b in zip(targets[0].total[case], targets[1].total[case], strict=True)]
                print(f"  {case:<11} {statistics.median(ratios):.3f}")
    finally:
        for target in targets:
            target.server.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


def start_profile(target: Target, case: str, into: Path) -> subprocess.Popen[bytes]:
    pid = psutil.Process(target.server.process.pid).children()[0].pid
    out = into / f"{target.name}-{case.replace(' ', '_')}.txt"
    spy = subprocess.Popen(
        [os.environ.get("PY_SPY", "py-spy"), "record", "-p", str(pid), "-o", str(out), "-r", "500",
         "-f", "raw", "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)
    return spy


if __name__ == "__main__":
    main()
