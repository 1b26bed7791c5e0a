"""Issue 25's measure, before and after in one run: a `dvc push` of N small files (default 2,000) to the
webdav remote, and a PROPFIND `Depth: 1` of a folder of M objects (default 100,000), each against the
registry at a baseline commit (default 2c63965, extracted with `git archive`) and against the working tree,
interleaved, best of the rounds; prints both numbers and the ratio after / before (goal: <= 1.10)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from scripts.harness import (
    BIN,
    RegistryServer,
    Simulator,
    fresh_database_url,
    serve_registry,
    start_simulator,
)

TOKEN = "glpat-developer-token-0002"
REQUESTS: dict[str, dict[str, int]] = {}  # the last push's requests by method, per side
REPO = Path(__file__).resolve().parents[2]
# rclone's owncloud PROPFIND body: the properties it reads, the md5 among them (oc:checksums)
RCLONE_BODY = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
    "<d:displayname/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/><d:getcontenttype/>"
    "<oc:checksums/><oc:permissions/></d:prop></d:propfind>"
)
SEED = """
import hashlib, sys
from app.db import build_engine
from scripts.seed import index_rows
count = int(sys.argv[2])
rows = [(f"wide/{i:06d}.bin", 64, hashlib.md5(str(i).encode()).hexdigest()) for i in range(count)]
engine = build_engine(sys.argv[1])
index_rows(engine, 101, "ml/vision", rows)
engine.dispose()
"""


@dataclass
class Side:
    """One registry under test: the code it runs (a source tree on PYTHONPATH, or the working tree)."""

    name: str
    tree: Path | None
    server: RegistryServer | None = None

    def env(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if self.tree is not None:  # ahead of the editable install's finder
            environ["PYTHONPATH"] = str(self.tree)
        return environ

    def processes(self) -> list[psutil.Process]:
        assert self.server is not None
        master = psutil.Process(self.server.process.pid)
        return [master, *master.children(recursive=True)]


def start(side: Side, root: Path, gitlab: Simulator, wide: int) -> None:
    """Migrate an empty index, index `wide` objects in one folder with the side's own seeder, serve."""
    root.mkdir(parents=True)
    environ = {
        **side.env(),
        "REGISTRY_STORAGE_URL": f"file://{root / 'storage'}",
        "REGISTRY_DATABASE_URL": fresh_database_url(root),
        "REGISTRY_GITLAB_URL": gitlab.url,
    }
    cwd = side.tree or REPO
    subprocess.run([BIN / "data-registry", "db", "upgrade"], env=environ, check=True, capture_output=True)
    url = environ["REGISTRY_DATABASE_URL"]
    seed = [sys.executable, "-c", SEED, url, str(wide)]
    subprocess.run(seed, env=environ, cwd=cwd, check=True, capture_output=True)
    with contextlib.chdir(cwd):  # `python -m gunicorn` puts its working directory first on sys.path
        side.server = serve_registry(root, environ)  # access log on both: requests counted by method


def cpu(processes: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def dvc(repo: Path, *args: str, ok: bool = True) -> bool:
    """Run the real dvc in repo; False when it failed and ok is False (else a failure ends the run)."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(repo.parent / "site-cache")}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode and ok:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.returncode == 0


def push(side: Side, repo: Path, label: str) -> tuple[float, float]:
    """Wall and registry CPU seconds of a `dvc push` of the workspace to a fresh webdav prefix; the
    requests it took, by method, in REQUESTS. A push dvc reports failed (a sporadic client-side "Bad file
    descriptor" was seen) is started again from scratch on a new prefix, once."""
    assert side.server is not None
    for attempt in range(2):
        prefix = f"bench-{label}-{attempt}"
        url = side.server.url.replace("http://", "webdav://") + f"/ml/vision/-/data/{prefix}"
        dvc(repo, "remote", "add", "-f", label, url)
        dvc(repo, "remote", "modify", "--local", label, "token", TOKEN)
        shutil.rmtree(repo.parent / "site-cache", ignore_errors=True)
        processes = side.processes()
        logged = len(side.server.log_text().splitlines())
        before, started = cpu(processes), time.perf_counter()
        if dvc(repo, "push", "-r", label, ok=attempt == 1):
            wall, used = time.perf_counter() - started, cpu(processes) - before
            counts: dict[str, int] = {}
            for line in side.server.log_text().splitlines()[logged:]:
                if f"/-/data/{prefix}" in line and '"' in line:
                    method = line.split('"')[1].split(" ")[0]
                    counts[method] = counts.get(method, 0) + 1
            REQUESTS[side.name] = counts
            return wall, used
        print(f"  ({side.name}: dvc push failed, pushing again to a fresh prefix)")
    raise AssertionError("unreachable")


def propfind(side: Side, body: str | None) -> tuple[float, float, str]:
    """Wall and registry CPU seconds of a PROPFIND Depth 1 of the wide folder, and what it listed."""
    assert side.server is not None
    processes = side.processes()
    before, started = cpu(processes), time.perf_counter()
    answer = requests.request(
        "PROPFIND",
        f"{side.server.url}/ml/vision/-/data/wide/",
        data=body,
        headers={"Depth": "1", "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/xml"},
        timeout=600,
    )
    wall = time.perf_counter() - started
    assert answer.status_code == 207, (side.name, answer.status_code, answer.text[:300])
    listed = answer.content.count(b"<D:response") + answer.content.count(b"<d:response")
    return wall, cpu(processes) - before, f"{listed:,} entries, {len(answer.content) / 1e6:.1f} MB"


def ratio(after: float, before: float) -> str:
    return f"{after / before:.2f}" if before > 0 else "n/a"


def report(title: str, results: dict[str, list[tuple[float, float]]]) -> None:
    best = {name: (min(w for w, _ in runs), min(c for _, c in runs)) for name, runs in results.items()}
    (bw, bc), (aw, ac) = best["before"], best["after"]
    print(
        f"  {title}: before {bw:7.2f} s (registry CPU {bc:6.2f} s), after {aw:7.2f} s (CPU {ac:6.2f} s);"
        f" ratio after/before: wall {ratio(aw, bw)}, registry CPU {ratio(ac, bc)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default="2c63965", help="the 'before' commit")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--wide", type=int, default=100_000, help="objects in the PROPFIND folder")
    parser.add_argument("--rounds", type=int, default=2, help="dvc push rounds (PROPFIND: 2 x rounds + 1)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-webdav-"))
    tree = root / "before-tree"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", args.baseline], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    sides = [Side("before", tree), Side("after", None)]
    gitlab = start_simulator()
    try:
        for side in sides:
            start(side, root / side.name, gitlab, args.wide)
        repo = root / "repo"
        (repo / "data").mkdir(parents=True)
        for i in range(args.files):
            (repo / "data" / f"{i:05d}.bin").write_bytes(os.urandom(1024 + i % 3072))
        dvc(repo, "init", "--no-scm")
        dvc(repo, "add", "data")

        pushes: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
        listings: dict[str, dict[str, list[tuple[float, float]]]] = {
            kind: {"before": [], "after": []} for kind in ("no body (allprop)", "rclone's prop body")
        }
        entries: dict[str, str] = {}
        for round_ in range(args.rounds):
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                pushes[side.name].append(push(side, repo, f"{side.name}-{round_}"))
        for round_ in range(2 * args.rounds + 1):
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                for kind, body in zip(listings, (None, RCLONE_BODY), strict=True):
                    wall, used, listed = propfind(side, body)
                    listings[kind][side.name].append((wall, used))
                    entries[f"{side.name} {kind}"] = listed
        print(
            f"issue 25 measure: before = {args.baseline}, after = the working tree; best of the rounds;"
            " gunicorn 2 workers, local storage, SQLite"
        )
        report(f"dvc push of {args.files} files (1-4 KiB) to the webdav remote", pushes)
        for kind, results in listings.items():
            report(f"PROPFIND Depth: 1 of {args.wide:,} objects, {kind}", results)
        print("  requests of one push, by method: " + "; ".join(f"{k} {v}" for k, v in REQUESTS.items()))
        print("  listed: " + "; ".join(f"{k}: {v}" for k, v in entries.items()))
    finally:
        for side in sides:
            if side.server is not None:
                side.server.stop()
        gitlab.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
