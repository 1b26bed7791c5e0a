"""DVC's remotes as a user far from the cloud sees them: a delay proxy (10 ms each way, scripts/bench/
delay_proxy.py) between the client and the registry and another between the client and the bucket
(SeaweedFS), the registry next to the bucket. The real `dvc` runs push, status -c and pull (empty cache)
with DVC's `s3` remote straight to the bucket (the baseline), the registry's `http` and `webdav` remotes,
and the registry's S3 door (`s3` remote, endpoint `<registry>/<project>/-/s3`) once it answers (else
"n/a"). The http pull is also measured per REGISTRY_DOWNLOAD_MODE (--http-modes): one registry per mode
over the same index and bucket. --bare: no delay (and, with more than 2 cores, the registry pinned to 2).
--sweep: the http pull per object size, redirect vs proxy, with the registry's CPU: where streaming
through the registry stops paying (REGISTRY_DOWNLOAD_STREAM_BELOW).

Needs dvc with the s3 and webdav plugins in a venv of its own (dvc-s3 pins botocore):
`python3 -m venv .tools/dvc-s3 && .tools/dvc-s3/bin/pip install dvc dvc-s3 dvc-webdav`, or DVC_BIN."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import boto3
import psutil
from botocore.config import Config

from app.model.sizes import parse_size
from scripts.bench.delay_proxy import ProxyThread
from scripts.bench.dvc_vs_s3 import PeakRss
from scripts.harness import RegistryServer, start_registry, start_seaweedfs, start_simulator

TOKEN = "glpat-developer-token-0002"
PROJECT = "ml/vision"
SETS = {"100": (100, 4096), "1k": (1000, 4096), "10k": (10_000, 4096), "big": (20, 50 << 20)}
SET_NAMES = {"100": "100 x 4 KB", "1k": "1,000 x 4 KB", "10k": "10,000 x 4 KB", "big": "20 x 50 MB"}
REMOTES = ("s3", "http", "webdav", "door")
SWEEP_SIZES = (4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20)


class Stack:
    """SeaweedFS, the GitLab simulator, one registry per download mode (same index, same bucket), and a
    delay proxy in front of each registry and of the bucket."""

    def __init__(self, root: Path, *, delay: float, modes: list[str], workers: int, pin: bool) -> None:
        self.root = root
        self.registries: dict[str, RegistryServer] = {}
        self.urls: dict[str, str] = {}
        self.rss: dict[str, PeakRss] = {}
        # per command: connections, requests, registry CPU seconds
        self.traffic: dict[str, tuple[int, Counter[str], float]] = {}
        self.proxies = ProxyThread()
        self.seaweed = start_seaweedfs(root / "seaweedfs")
        self.gitlab = start_simulator()
        try:
            self._start(delay, modes, workers, pin)
        except BaseException:
            self.stop()
            raise

    def _start(self, delay: float, modes: list[str], workers: int, pin: bool) -> None:
        root = self.root
        s3 = boto3.session.Session(
            aws_access_key_id=self.seaweed.access_key, aws_secret_access_key=self.seaweed.secret_key
        ).client("s3", endpoint_url=self.seaweed.endpoint, region_name="us-east-1")
        for bucket in ("bench-registry", "bench-direct"):
            s3.create_bucket(Bucket=bucket)
        self.bucket_url = f"http://127.0.0.1:{self.proxies.add(self.seaweed.endpoint, delay).port}"
        common = {
            "REGISTRY_STORAGE_URL": "s3://bench-registry/registry",
            "REGISTRY_S3_ENDPOINT_URL": self.seaweed.endpoint,  # the registry sits next to the bucket
            "REGISTRY_S3_PUBLIC_ENDPOINT_URL": self.bucket_url,  # signed URLs go through the client's line
            "REGISTRY_DATABASE_URL": f"sqlite:///{root / 'registry.db'}",
            "REGISTRY_SECRET_KEY": "bench-secret-key-0123456789",
            "AWS_ACCESS_KEY_ID": self.seaweed.access_key,
            "AWS_SECRET_ACCESS_KEY": self.seaweed.secret_key,
        }
        for mode in dict.fromkeys(["auto", *modes]):
            server = start_registry(
                root / f"registry-{mode}",
                self.gitlab.url,
                serve_args=("--no-access-log", "--workers", str(workers)),
                REGISTRY_DOWNLOAD_MODE=mode,
                **common,
            )
            if pin and (os.cpu_count() or 1) > 2:  # 2 bare cores for the registry, the rest for the others
                for process in (
                    psutil.Process(server.process.pid),
                    *psutil.Process(server.process.pid).children(),
                ):
                    process.cpu_affinity([0, 1])
            self.registries[mode] = server
            self.urls[mode] = f"http://127.0.0.1:{self.proxies.add(server.url, delay).port}"
        self.rss = {mode: PeakRss(server) for mode, server in self.registries.items()}

    def phase(self, name: str) -> None:
        for sampler in self.rss.values():
            sampler.phase = name

    def registry_cpu(self) -> float:
        """CPU seconds used so far by every registry's workers."""
        total = 0.0
        for server in self.registries.values():
            for worker in psutil.Process(server.process.pid).children():
                try:
                    times = worker.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
        return total

    def stop(self) -> None:
        for sampler in self.rss.values():
            sampler.stop()
        for server in self.registries.values():
            server.stop()
        self.proxies.stop()
        self.gitlab.stop()
        self.seaweed.stop()


def door_answers(url: str) -> bool:
    """The S3 door at `url` lists buckets for the GitLab token (probed through the delay proxy)."""
    client = boto3.session.Session(aws_access_key_id=TOKEN, aws_secret_access_key=TOKEN).client(
        "s3",
        endpoint_url=f"{url}/{PROJECT}/-/s3",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    try:
        client.list_buckets()
        return True
    except Exception:  # anything but an S3 answer: the door is not there yet
        return False


class Workspace:
    """A DVC project with `count` random files of `size` bytes and every remote configured."""

    def __init__(self, stack: Stack, dvc_bin: str, name: str, count: int, size: int) -> None:
        self.stack, self.dvc_bin, self.name = stack, dvc_bin, name
        self.repo = stack.root / name
        (self.repo / "data").mkdir(parents=True)
        for i in range(count):
            (self.repo / "data" / f"{i:05d}.bin").write_bytes(os.urandom(size))
        self.env = {
            **os.environ,
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(stack.root / "site-cache"),
            "AWS_ACCESS_KEY_ID": stack.seaweed.access_key,
            "AWS_SECRET_ACCESS_KEY": stack.seaweed.secret_key,
        }
        self.run("init", "--no-scm")
        self.run("add", "data")
        self.run("remote", "add", "s3", f"s3://bench-direct/{name}")
        self.run("remote", "modify", "s3", "endpointurl", stack.bucket_url)
        for mode, url in stack.urls.items():
            self.add_http(f"http-{mode}", f"{url}/{PROJECT}/-/data/{name}/http")
        base = f"{stack.urls['auto']}/{PROJECT}/-/data/{name}"
        self.run("remote", "add", "webdav", f"{base}/webdav".replace("http://", "webdav://"))
        self.run("remote", "modify", "--local", "webdav", "token", TOKEN)
        self.run("remote", "add", "door", f"s3://{name}/door")
        self.run("remote", "modify", "door", "endpointurl", f"{stack.urls['auto']}/{PROJECT}/-/s3")
        self.run("remote", "modify", "--local", "door", "access_key_id", TOKEN)
        self.run("remote", "modify", "--local", "door", "secret_access_key", TOKEN)

    def add_http(self, remote: str, url: str) -> None:
        self.run("remote", "add", remote, url)
        self.run("remote", "modify", remote, "auth", "custom")
        self.run("remote", "modify", remote, "custom_auth_header", "Authorization")
        self.run("remote", "modify", "--local", remote, "password", f"Bearer {TOKEN}")

    def run(self, *argv: str) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            [self.dvc_bin, *argv], cwd=self.repo, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"dvc {' '.join(argv)}:\n{done.stdout}\n{done.stderr}")
        return time.perf_counter() - started

    def timed(self, label: str, *argv: str, forget: bool = False) -> tuple[float, float]:
        """Seconds and registry CPU seconds of one dvc command (forget: from an empty cache)."""
        if forget:
            for gone in (self.repo / ".dvc" / "cache", self.repo / "data", self.stack.root / "site-cache"):
                shutil.rmtree(gone, ignore_errors=True)
        self.stack.phase(f"{self.name} {label}")
        cpu = self.stack.registry_cpu()
        connections, requests = self.stack.proxies.traffic()
        seconds = self.run(*argv)
        after, now = self.stack.proxies.traffic()
        cpu = self.stack.registry_cpu() - cpu
        self.stack.traffic[label] = (after - connections, now - requests, cpu)
        return seconds, cpu


def measure(ws: Workspace, remotes: list[str], modes: list[str], rounds: int) -> dict[str, float]:
    """push once, then status -c and pull (the http pull once per download mode) `rounds` times,
    interleaved across remotes, the best kept: other jobs on the same cores come and go."""
    times: dict[str, float] = {}
    for remote in remotes:
        times[f"push {remote}"] = ws.timed(f"push {remote}", "push", "-r", _dvc_name(remote))[0]
    for _ in range(rounds):
        for remote in remotes:
            label = f"status {remote}"
            got = ws.timed(label, "status", "-c", "-r", _dvc_name(remote))[0]
            times[label] = min(times.get(label, got), got)
        for remote in remotes:
            for name in [f"http-{m}" for m in modes] if remote == "http" else [remote]:
                label = f"pull {name}" if remote == "http" else f"pull {remote}"
                got = ws.timed(label, "pull", "-r", name, forget=True)[0]
                times[label] = min(times.get(label, got), got)
    return times


def print_traffic(traffic: dict[str, tuple[int, Counter[str], float]], count: int) -> None:
    """What each command sent through the delay lines (its last run): requests by method and connections
    opened, per file (every request is a round trip, every new connection one more), and the registry's
    CPU per file (on shared cores it is time the client does not get)."""
    print(f"  per file through the delay lines (last run of each; {count} files)")
    for label, (connections, requests, cpu) in traffic.items():
        methods = ", ".join(f"{m} {n / count:.2f}" for m, n in sorted(requests.items()))
        print(
            f"    {label:<22} {methods or '-'}; {connections} connections;"
            f" registry CPU {cpu * 1000 / count:.2f} ms"
        )


def _dvc_name(remote: str) -> str:
    return "http-auto" if remote == "http" else remote


def print_table(title: str, times: dict[str, float], remotes: list[str], modes: list[str]) -> None:
    print(f"  {title}  (seconds; ratio to DVC's s3 remote straight to the bucket)")
    columns = ["s3", *(r for r in remotes if r != "s3")]
    print(f"    {'':<22}" + "".join(f"{c:>18}" for c in columns))
    rows = [
        ("push", "push"),
        ("status -c", "status"),
        *((f"pull (http: {m})" if len(modes) > 1 else "pull", "pull") for m in modes),
    ]
    for index, (label, op) in enumerate(rows):
        base = times.get(f"{op} s3")
        cells = []
        for remote in columns:
            key = f"{op} {remote}"
            if op == "pull" and remote == "http":
                key = f"pull http-{modes[index - 2]}"
            elif op == "pull" and index > 2:
                cells.append(f"{'':>18}")
                continue
            value = times.get(key)
            if value is None:
                cells.append(f"{'n/a':>18}")
            elif remote == "s3" or not base:
                cells.append(f"{value:>10.2f} s      ")
            else:
                cells.append(f"{value:>8.2f} s {value / base:>5.2f}x")
        print(f"    {label:<22}" + "".join(cells))


def sweep(stack: Stack, dvc_bin: str, sizes: tuple[int, ...], rounds: int) -> None:
    """The http pull per object size, redirect vs proxy, best of `rounds`, and the registry's CPU."""
    print("  http pull per object size: redirect vs proxy (best of rounds)")
    for size in sizes:
        count = max(32, min(1000, (256 << 20) // size))
        ws = Workspace(stack, dvc_bin, f"sweep-{size}", count, size)
        ws.run("push", "-r", "http-auto")
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            for mode in ("redirect", "proxy"):
                got = ws.timed(f"pull {mode}", "pull", "-r", f"http-{mode}", forget=True)
                best[mode] = min(best.get(mode, got), got)
        (redirect, redirect_cpu), (proxy, cpu) = best["redirect"], best["proxy"]
        print(
            f"    {count:>5} x {_human(size):>6}: redirect {redirect:6.2f} s, proxy {proxy:6.2f} s"
            f" ({proxy / redirect:.2f}x); registry CPU per object: redirect"
            f" {redirect_cpu * 1000 / count:5.1f} ms, proxy {cpu * 1000 / count:5.1f} ms"
        )
        shutil.rmtree(ws.repo)


def _human(size: int) -> str:
    return f"{size / 2**20:g} MB" if size >= 1 << 20 else f"{size / 2**10:g} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sets", default="1k", help=f"of {','.join(SETS)} (default: %(default)s)")
    parser.add_argument("--remotes", default=",".join(REMOTES), help="default: %(default)s")
    parser.add_argument("--http-modes", default="auto", help="http pull per mode: redirect,auto,proxy")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="each way (default: %(default)s)")
    parser.add_argument("--bare", action="store_true", help="no delay; registry on 2 cores if there are more")
    parser.add_argument("--door", choices=("auto", "on", "off"), default="auto", help="probe the S3 door")
    parser.add_argument("--sweep", action="store_true", help="the threshold sweep instead of the table")
    parser.add_argument("--sizes", default="", help="sweep sizes, e.g. 512KiB,1MiB")
    parser.add_argument("--rounds", type=int, default=1, help="status/pull rounds, best kept (default: 1)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default: %(default)s)")
    args = parser.parse_args()
    dvc_bin = os.environ.get("DVC_BIN") or str(Path(".tools/dvc-s3/bin/dvc").resolve())
    if not Path(dvc_bin).exists():
        raise SystemExit(__doc__)
    delay = 0.0 if args.bare else args.delay_ms / 1000
    modes = ["redirect", "proxy"] if args.sweep else args.http_modes.split(",")
    root = Path(tempfile.mkdtemp(prefix="bench-remotes-"))
    stack = Stack(root, delay=delay, modes=modes, workers=args.workers, pin=args.bare)
    started = time.perf_counter()
    try:
        print(
            f"dvc through {delay * 1000:.0f} ms each way to the registry and to the bucket (SeaweedFS);"
            f" {args.workers} gunicorn workers, {os.cpu_count()} cores shared by everything"
        )
        if args.sweep:
            sizes = tuple(parse_size(v) for v in args.sizes.split(",")) if args.sizes else SWEEP_SIZES
            sweep(stack, dvc_bin, sizes, args.rounds)
            return
        wanted = [r for r in args.remotes.split(",") if r]
        remotes = list(wanted)
        door: Callable[[], bool] = lambda: door_answers(stack.urls["auto"])  # noqa: E731
        if "door" in remotes and (args.door == "off" or (args.door == "auto" and not door())):
            remotes.remove("door")
            print("  S3 door: n/a (it does not answer ListBuckets yet)")
        for key in args.sets.split(","):
            count, size = SETS[key]
            ws = Workspace(stack, dvc_bin, key, count, size)
            print_table(
                SET_NAMES[key],
                measure(ws, remotes, modes, args.rounds),
                wanted,
                modes,
            )
            print_traffic(stack.traffic, count)
            stack.traffic.clear()
            shutil.rmtree(ws.repo)
        for mode, sampler in stack.rss.items():
            phase, peak = max(sampler.by_phase.items(), key=lambda item: item[1])
            print(f"  peak worker RSS of the {mode} registry: {peak >> 20} MiB (during dvc {phase})")
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
        print(f"  ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
