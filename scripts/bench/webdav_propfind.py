"""Time of a WebDAV `PROPFIND Depth: 1` with no body (what DVC's webdav remote sends) on a folder of N
objects (default 100,000), through the Flask app with SQLite; with --before DIR also for the code in DIR
(e.g. `git archive HEAD | tar -x -C DIR`), each in its own process, and the ratios. Extra runs: a body
naming rclone's owncloud properties (the md5 as oc:checksums)."""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "glpat-developer-token-0002"
BODIES = {
    "empty body (DVC)": b"",
    "rclone owncloud props": (
        b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
        b"<d:displayname/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/><oc:checksums/>"
        b"<oc:permissions/></d:prop></d:propfind>"
    ),
}


def serve(objects: int) -> None:
    """Set up the code importable from the current directory with `objects` in a folder, then time one
    listing per line read (the line names the body), printing the seconds: the caller alternates trees,
    so a busy machine slows both alike."""
    sys.path.insert(0, os.getcwd())
    from sqlalchemy import create_engine, insert

    from app import create_app
    from app.db import upgrade
    from app.db.models import Base
    from app.db.projects import insert_project
    from app.settings import load_settings
    from scripts.harness import start_simulator

    tmp = Path(tempfile.mkdtemp(prefix="bench-propfind-"))
    gitlab = start_simulator()
    try:
        settings = {
            "storage_url": f"file://{tmp / 'storage'}",
            "database_url": f"sqlite:///{tmp / 'index.db'}",
            "gitlab_url": gitlab.url,
            "rate_limit": 0,
        }
        upgrade(load_settings(environ={}, overrides=settings).effective_database_url)
        engine = create_engine(settings["database_url"])
        now = datetime.now(UTC)
        rows = [
            {
                "project_id": 101,
                "path": f"big/{hashlib.md5(str(i).encode()).hexdigest()}",
                "size": 1000 + i,
                "md5": hashlib.md5(str(i).encode()).hexdigest(),
                "uploader_id": 1,
                "created_at": now,
            }
            for i in range(objects)
        ]
        with engine.begin() as conn:
            insert_project(conn, 101, "ml/vision")
            conn.execute(insert(Base.metadata.tables["objects"]), rows)
        client = create_app(settings).test_client()
        headers = {"Authorization": f"Bearer {TOKEN}", "Depth": "1"}
        print("ready", flush=True)
        for line in sys.stdin:
            body = BODIES[line.strip()]
            started = time.perf_counter()
            answer = client.open("/ml/vision/-/data/big", method="PROPFIND", headers=headers, data=body)
            size = len(answer.get_data())
            assert answer.status_code == 207 and size > objects * 100, (answer.status, size)
            print(time.perf_counter() - started, flush=True)
    finally:
        gitlab.stop()


class Tree:
    """A `--serve` process on one tree."""

    def __init__(self, tree: Path, objects: int) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(objects)]
        self.process = subprocess.Popen(
            command, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready", tree

    def time(self, body: str) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(body + "\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a tree with the code to compare with")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    trees = {"now": Tree(ROOT, args.objects)}
    if args.before:
        trees["before"] = Tree(args.before, args.objects)
    try:
        print(
            f"PROPFIND Depth: 1 of {args.objects:,} objects in a folder, median of {args.repeats}, alternated"
        )
        for name in BODIES:
            for tree in trees.values():
                tree.time(name)  # warm up
            times: dict[str, list[float]] = {t: [] for t in trees}
            for _ in range(args.repeats):
                for label, tree in trees.items():
                    times[label].append(tree.time(name))
            line = f"  {name:24}" + "".join(f"  {t} {statistics.median(v):6.2f} s" for t, v in times.items())
            if "before" in times:
                ratios = [a / b for a, b in zip(times["now"], times["before"], strict=True)]
                ratio = statistics.median(times["now"]) / statistics.median(times["before"])
                line += f"   ratio {ratio:.2f} (pairwise median {statistics.median(ratios):.2f})"
            print(line, flush=True)
    finally:
        for tree in trees.values():
            tree.close()


if __name__ == "__main__":
    main()
