"""Latency as the index grows: fills the index with 10^3 ... 10^7 objects across 1,000 projects and, at
every size, measures the registry's requests against one project (ml/vision) that holds a 100,000-object
folder (a tenth of the index when it is smaller) and DVC's `files/md5` layout: HEAD, GET (302 to a signed
URL), PUT of 4 KB, a PROPFIND page (the first 500 children of the 100,000-object folder), a DVC PROPFIND
of `files/md5` (256 sub-collections), an API listing page, the project's usage and a DELETE. Requests go
through the app in-process (no HTTP server: what is measured is the registry and its index); storage is
S3 on a local SeaweedFS. Prints p50/p95 per level and the ratio of the largest level to the smallest
from 10^4 on, and plots the p50 curves (scripts/bench/scale_curve_<database>.png).

PostgreSQL: run inside `. scripts/pg-throwaway.sh && pg_up` (uses REGISTRY_TEST_POSTGRES_URL); without it,
SQLite (default levels up to 10^6). Plots need matplotlib: `.venv/bin/pip install -r
requirements-bench.txt`."""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from app import create_app
from app.db import build_engine, upgrade
from app.settings import load_settings
from scripts.harness import fresh_database_url, start_seaweedfs, start_simulator
from scripts.seed import index_rows
from tests.conftest import TOKENS, s3_registry_env

PROJECT_ID, PROJECT = 101, "ml/vision"  # the simulator's project the requests go to
FILLER_PROJECTS = 1000
FOLDER = 100_000
HERE = Path(__file__).resolve().parent


def fill(engine: Engine, start: int, stop: int) -> None:
    """Filler objects start..stop-1 spread over FILLER_PROJECTS projects, written by the database itself
    (INSERT ... SELECT over a series): millions of rows in a minute."""
    postgres = engine.dialect.name == "postgresql"
    series = (
        "generate_series(:start, :stop - 1) AS s(i)"
        if postgres
        else "(WITH RECURSIVE s(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :stop)"
        " SELECT i FROM s) AS s"
    )
    path = (
        "'files/md5/' || lpad(to_hex(i % 256), 2, '0') || '/' || lpad(to_hex(i), 30, '0')"
        if postgres
        else "printf('files/md5/%02x/%030x', i % 256, i)"
    )
    now = "now()" if postgres else "CURRENT_TIMESTAMP"
    with engine.begin() as conn:
        for project in range(1, FILLER_PROJECTS + 1):
            conn.execute(
                text(
                    "INSERT INTO projects (id, path, state, used_bytes, object_count, created_at, updated_at)"
                    f" VALUES (:id, :path, 'active', 0, 0, {now}, {now}) ON CONFLICT DO NOTHING"
                ),
                {"id": 10_000 + project, "path": f"filler/p{project}"},
            )
        conn.execute(
            text(
                "INSERT INTO objects (project_id, path, size, md5, created_at)"
                f" SELECT 10001 + i % {FILLER_PROJECTS}, {path}, 4096, '0', {now} FROM {series}"
            ),
            {"start": start, "stop": stop},
        )
        conn.execute(text("ANALYZE"))


def timed(call: Callable[[], Any], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", help="index sizes (default: 10^3 ... 10^7 or 10^6)")
    parser.add_argument("--rounds", type=int, default=200, help="requests per measurement")
    parser.add_argument("--no-plot", action="store_true", help="print only")
    args = parser.parse_args()
    postgres = bool(os.environ.get("REGISTRY_TEST_POSTGRES_URL"))
    levels = args.levels or [10**n for n in range(3, 8 if postgres else 7)]
    root = Path(tempfile.mkdtemp(prefix="scale-"))
    seaweed, gitlab = start_seaweedfs(root / "seaweedfs"), start_simulator()
    results: dict[str, dict[int, list[float]]] = {}
    try:
        storage = s3_registry_env(seaweed)
        os.environ.update({k: v for k, v in storage.items() if k.startswith("AWS_")})
        settings = {
            "storage_url": storage["REGISTRY_STORAGE_URL"],
            "s3_endpoint_url": storage["REGISTRY_S3_ENDPOINT_URL"],
            "database_url": fresh_database_url(root),
            "gitlab_url": gitlab.url,
            "access_log": "false",
            "rate_limit": 0,
            # the index is seeded without bytes in the bucket: GET measures the index and the signing
            # (auto mode would stream the small seeded objects from the bucket, where they are not)
            "download_mode": "redirect",
        }
        database_url = load_settings(environ={}, overrides=settings).effective_database_url
        upgrade(database_url)
        engine = build_engine(database_url)
        client = create_app(settings).test_client()
        data = f"/{PROJECT}/-/data"
        folder = min(FOLDER, max(levels[0] // 10, 2 * args.rounds))
        md5s = [f"{i:032x}" for i in range(1, folder + 1)]
        index_rows(engine, PROJECT_ID, PROJECT, [(f"big/{m}", 4096, m) for m in md5s])
        in_index, addressed, deleted = folder, 0, set[str]()
        for level in levels:
            wanted = min(FOLDER, max(level // 10, 2 * args.rounds))
            if folder < wanted:  # grow the project's folder up to 100,000
                more = [f"{i:032x}" for i in range(folder + 1, wanted + 1)]
                index_rows(engine, PROJECT_ID, PROJECT, [(f"big/{m}", 4096, m) for m in more])
                md5s += more
                folder += len(more)
                in_index += len(more)
            more = md5s[addressed : min(len(md5s), 50_000)]  # and DVC's layout beside it
            index_rows(engine, PROJECT_ID, PROJECT, [(f"files/md5/{m[:2]}/{m[2:]}", 4096, m) for m in more])
            addressed, in_index = addressed + len(more), in_index + len(more)
            if in_index < level:
                started = time.perf_counter()
                fill(engine, in_index, level)
                print(f"filled to {level:,} objects in {time.perf_counter() - started:.0f} s", flush=True)
                in_index = level
            alive = [m for m in md5s if m not in deleted]
            existing = [f"{data}/big/{random.choice(alive)}" for _ in range(args.rounds)]
            uploads = [os.urandom(4096) for _ in range(args.rounds)]
            gone = random.sample(alive, args.rounds)
            deleted.update(gone)  # HEAD and GET of the next levels pick among the others
            doomed = iter(f"{data}/big/{m}" for m in gone)

            measurements = requests_at(client, existing, uploads, doomed)
            line = [f"{level:>11,}"]
            for name, call in measurements.items():
                rounds = args.rounds if name not in {"PROPFIND page", "PROPFIND files/md5"} else 20
                call()  # warm
                samples = timed(call, rounds - 1)
                results.setdefault(name, {})[level] = samples
                line.append(f"{name} {statistics.median(samples):.2f}/{percentile(samples, 95):.2f}")
            print(" | ".join(line) + "  (ms p50/p95)", flush=True)
    finally:
        gitlab.stop()
        seaweed.stop()
        shutil.rmtree(root, ignore_errors=True)
    database = "postgresql" if postgres else "sqlite"
    summarize(results, database)
    if not args.no_plot:
        plot(results, HERE / f"scale_curve_{database}.png", database)


def requests_at(
    client: Any, existing: list[str], uploads: list[bytes], doomed: Iterator[str]
) -> dict[str, Callable[[], Any]]:
    """What is measured at one level, by name."""
    auth = {"Authorization": f"Bearer {TOKENS['maintainer']}"}
    data = f"/{PROJECT}/-/data"

    def put(body: bytes) -> None:
        md5 = hashlib.md5(body).hexdigest()
        answer = client.put(f"{data}/files/md5/{md5[:2]}/{md5[2:]}", data=body, headers=auth)
        assert answer.status_code == 201, answer.status_code

    def page() -> None:
        answer = client.open(f"{data}/big", method="PROPFIND", headers={**auth, "Depth": "1"}, buffered=False)
        for _ in zip(range(3), answer.response, strict=False):  # 600 responses: a page of 500 and more
            pass
        answer.close()

    return {
        "HEAD": lambda: check(client.head(random.choice(existing), headers=auth), 200),
        "GET (302)": lambda: check(client.get(random.choice(existing), headers=auth), 302),
        "PUT 4 KB": lambda: put(uploads.pop()),
        "PROPFIND page": page,
        "PROPFIND files/md5": lambda: check(
            client.open(f"{data}/files/md5", method="PROPFIND", headers={**auth, "Depth": "1"}), 207
        ),
        "API list page": lambda: check(
            client.get(
                f"/api/v1/projects/{PROJECT_ID}/objects",
                query_string={"prefix": "big/", "limit": 100},
                headers=auth,
            ),
            200,
        ),
        "usage": lambda: check(client.get(f"/api/v1/projects/{PROJECT_ID}", headers=auth), 200),
        "DELETE": lambda: check(client.delete(next(doomed), headers=auth), 204),
    }


def check(answer: Any, status: int) -> None:
    assert answer.status_code == status, (answer.status_code, answer.get_data(as_text=True)[:200])


def percentile(samples: list[float], p: int) -> float:
    return sorted(samples)[min(len(samples) - 1, len(samples) * p // 100)]


def summarize(results: dict[str, dict[int, list[float]]], database: str) -> None:
    print(f"{database}: p50 at the largest level / p50 at 10^4 (goal for HEAD: within 2x)")
    for name, by_level in results.items():
        levels = sorted(level for level in by_level if level >= 10**4) or sorted(by_level)
        first, last = statistics.median(by_level[levels[0]]), statistics.median(by_level[levels[-1]])
        print(
            f"  {name:<20} {first:7.2f} ms at {levels[0]:,} -> {last:7.2f} ms at {levels[-1]:,}:"
            f" {last / first:.2f}x"
        )


def plot(results: dict[str, dict[int, list[float]]], target: Path, database: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    for name, by_level in results.items():
        levels = sorted(by_level)
        axes.plot(levels, [statistics.median(by_level[n]) for n in levels], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("objects in the index")
    axes.set_ylabel("server time per request, p50 (ms)")
    axes.set_title(f"Latency as the index grows ({database}, in-process, S3 on SeaweedFS)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncols=2)
    figure.tight_layout()
    figure.savefig(target)
    print(f"plot: {target}")


if __name__ == "__main__":
    main()
