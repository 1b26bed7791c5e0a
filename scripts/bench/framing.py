"""The poller's framing, hand-written (app.request_framing: the rules, and a chunk scanner) against the
same rules with h11 reading the request line, the fields and the chunked body too, in one run:
microseconds to frame a request in-process, then GET and HEAD requests per second through gunicorn and
(with --push-files) a `dvc push`, with plain gthread as a baseline. --compare NAME=CLASS adds another
worker class (e.g. the worker before this change, from a copy on PYTHONPATH). Needs wrk and ab."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import timeit
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h11
import psutil

from app.gunicorn_worker import GuardedThreadWorker
from app.request_arrival import BODY_BUFFER, Arrival
from app.request_framing import HEADER_LIMIT, FramingError

if TYPE_CHECKING:
    from scripts.harness import RegistryServer

WORKERS = {
    "hand-written": "app.gunicorn_worker.GuardedThreadWorker",
    "h11": "scripts.bench.framing.H11FramingWorker",
    "gthread": "gthread",
}


class H11Arrival(Arrival):
    """The same rules (h11 merges two equal Content-Length lines, lets Transfer-Encoding beat
    Content-Length and unfolds folded lines, so read_head still checks those), with h11 reading the
    request line, the fields and the body as well."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.parser = h11.Connection(h11.SERVER, max_incomplete_event_size=HEADER_LIMIT)
        self.fed = self.body = 0

    def complete(self) -> bool:
        if self.head is None:
            super().complete()  # the not-HTTP check, and the rules h11 lacks
            if self.head is None:
                return False
        self.parser.receive_data(bytes(self.data[self.fed :]))
        self.fed = len(self.data)
        try:
            while (event := self.parser.next_event()) is not h11.NEED_DATA:
                if isinstance(event, h11.Data):
                    self.body += len(event.data)
                elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                    return True
        except h11.RemoteProtocolError as e:
            raise FramingError(e.error_status_hint, str(e)) from None
        return self.body > BODY_BUFFER or self.head.length > BODY_BUFFER


class H11FramingWorker(GuardedThreadWorker):
    arrival_class = H11Arrival


REQUESTS = {
    "GET (6 fields)": b"GET /ml/vision/-/data/a/files/md5/ab/cdef HTTP/1.1\r\nHost: registry.example.com\r\n"
    b"User-Agent: dvc/3.67.1\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
    b"Authorization: Bearer glpat-developer-token-0002\r\n\r\n",
    "PUT 4 KiB chunked": b"PUT /ml/vision/-/data/a/files/md5/ab/cdef HTTP/1.1\r\n"
    b"Host: registry.example.com\r\nUser-Agent: dvc/3.67.1\r\n"
    b"Authorization: Bearer glpat-developer-token-0002\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n1000\r\n" + b"x" * 4096 + b"\r\n0\r\n\r\n",
}


def frame_microseconds(arrival_class: type[Arrival], raw: bytes, number: int = 20000) -> float:
    conn: Any = type("Conn", (), {"key": "192.0.2.1"})()

    def frame() -> None:
        assert arrival_class(conn, 0.0, raw).complete()

    return min(timeit.repeat(frame, number=number, repeat=5)) / number * 1e6


def worker_cpu(server: RegistryServer) -> float:
    """CPU seconds (user and system) of the server's workers so far."""
    return sum(sum(child.cpu_times()[:2]) for child in psutil.Process(server.process.pid).children())


def main() -> None:
    from scripts.bench.dvc_push_pull import dvc
    from scripts.bench.get_head_rps import ab_head, wrk
    from scripts.bench.worker_class import object_url, push_seconds
    from scripts.harness import start_registry, start_simulator

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--push-files", type=int, default=0, help="also a dvc push of this many files")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=CLASS")
    parser.add_argument("--only", default="", help="these workers only (comma-separated names)")
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("ab"):
        raise SystemExit("wrk and ab are required: apt-get install wrk apache2-utils")

    print("framing one request in-process, best of 5 x 20,000 (microseconds):")
    for name, raw in REQUESTS.items():
        mine, theirs = frame_microseconds(Arrival, raw), frame_microseconds(H11Arrival, raw)
        print(f"  {name:>18}: hand-written {mine:6.1f}, h11 {theirs:6.1f}, ratio {theirs / mine:.2f}")

    workers = WORKERS | dict(pair.split("=", 1) for pair in args.compare)
    if args.only:
        workers = {name: workers[name] for name in args.only.split(",")}
    root = Path(tempfile.mkdtemp(prefix="bench-"))
    gitlab = start_simulator()
    servers = {
        name: start_registry(
            root / name,
            gitlab.url,
            serve_args=("--no-access-log", "--worker-class", worker_class),
            REGISTRY_RATE_LIMIT="0",
            REGISTRY_DOWNLOAD_MODE="redirect",  # the GET it measures is the 302, whatever the object size
        )
        for name, worker_class in workers.items()
    }
    try:
        if args.push_files:
            (root / "repo" / "data").mkdir(parents=True)
            for i in range(args.push_files):
                (root / "repo" / "data" / f"{i:05d}.bin").write_bytes(os.urandom(1024 + i % 3072))
            dvc(root / "repo", "init", "--no-scm")
            dvc(root / "repo", "add", "data")
        urls = {name: object_url(server) for name, server in servers.items()}
        runs: dict[str, dict[str, list[float]]] = {
            name: {"GET": [], "HEAD": [], "GET cpu": [], "HEAD cpu": [], "push": []} for name in servers
        }
        names = list(servers)
        for round_ in range(args.rounds):  # interleaved, each round in another order: load hits all alike
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                for what, tool in (("GET", wrk), ("HEAD", ab_head)):
                    before = worker_cpu(servers[name])
                    rate = tool(urls[name], args.seconds, args.connections)
                    runs[name][what].append(rate)
                    runs[name][what + " cpu"].append(
                        (worker_cpu(servers[name]) - before) / (rate * args.seconds)
                    )
                if args.push_files:
                    runs[name]["push"].append(push_seconds(root, servers[name], f"push-{name}-{round_}"))
        print(
            f"gunicorn 2 workers x 16 threads; data-plane GET (302) and HEAD, {args.connections} connections,"
            f" {args.seconds} s a run, best of {args.rounds} interleaved rounds; workers' CPU per request"
            f" (median); ratio to {names[0]}"
        )
        base = runs[names[0]]
        for name, measured in runs.items():
            line = f"  {name:>13}:"
            for what in ("GET", "HEAD"):
                best, cpu = max(measured[what]), statistics.median(measured[what + " cpu"]) * 1e6
                listed = ", ".join(f"{v:.0f}" for v in measured[what])
                line += f"  {what} {best:5.0f} req/s ({listed}) ratio {best / max(base[what]):.2f},"
                line += f" {cpu:4.0f} µs CPU ratio {cpu / statistics.median(base[what + ' cpu']) / 1e6:.2f};"
            if measured["push"]:
                push = min(measured["push"])
                listed = ", ".join(f"{v:.1f}" for v in measured["push"])
                line += f"  dvc push of {args.push_files} files {push:5.1f} s ({listed})"
                line += f" ratio {push / min(base['push']):.2f}"
            print(line)
    finally:
        for server in servers.values():
            server.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
