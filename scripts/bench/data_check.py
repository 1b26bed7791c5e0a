"""The time of one data check (DESIGN 3.12) on a repository with 100 `.dvc` files (directory datasets of
1,000 files each) and 100,000 objects here: the worker's job function in-process, GitLab simulated on a
loopback socket, local disk and SQLite (or REGISTRY_TEST_POSTGRES_URL). Prints the seconds, the GitLab
calls and the statuses it posted, for a complete commit and for one with a file of each dataset missing."""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from app.components import build_components
from app.data_checks import DataChecker
from app.db import build_engine, upgrade
from app.jobs.data_checks import run_data_checks
from scripts.harness import fresh_database_url, start_simulator
from scripts.seed import index_rows

ADMIN = "glpat-service-admin-token-1"
PUBLIC = "https://data.example.com"


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def cas(md5_hex: str, suffix: str = "") -> str:
    return f"dvc/files/md5/{md5_hex[:2]}/{md5_hex[2:]}{suffix}"


def build(
    root: Path, datasets: int, files: int, missing: int
) -> tuple[dict[str, bytes], list[tuple[str, int, str]]]:
    """The repository's files and the index rows (path, size, md5): every file of every dataset but
    `missing` of each, and each dataset's .dir listing."""
    repo = {".dvc/config": f"['remote \"registry\"']\n    url = {PUBLIC}/ml/vision/-/data/dvc\n".encode()}
    rows = []
    for d in range(datasets):
        entries = [{"md5": md5(f"{d}/{f}".encode()), "relpath": f"part-{f:05d}.csv"} for f in range(files)]
        rows += [(cas(e["md5"]), 10, e["md5"]) for e in entries[missing:]]
        manifest = json.dumps(entries).encode()
        listing = cas(md5(manifest), ".dir")
        (root / "projects/101" / listing).parent.mkdir(parents=True, exist_ok=True)
        (root / "projects/101" / listing).write_bytes(manifest)
        rows.append((listing, len(manifest), md5(manifest)))
        out = (
            f"outs:\n- md5: {md5(manifest)}.dir\n  size: {files * 10}\n  nfiles: {files}\n  path: d{d:03d}\n"
        )
        repo[f"datasets/d{d:03d}.dvc"] = out.encode()
    return repo, rows


def one(work: Path, datasets: int, files: int, missing: int) -> None:
    root = work / f"missing-{missing}"
    root.mkdir()
    simulator = start_simulator()
    try:
        parts = build_components(
            {
                "storage_url": f"file://{root}",
                "database_url": fresh_database_url(root),
                "gitlab_url": simulator.url,
                "gitlab_service_token": ADMIN,
                "public_url": PUBLIC,
            }
        )
        upgrade(parts.settings.effective_database_url)
        repo, rows = build(root, datasets, files, missing)
        engine = build_engine(parts.settings.effective_database_url)
        index_rows(engine, 101, "ml/vision", rows)
        engine.dispose()
        sha = simulator.world.commit(101, "main", repo)
        parts.data_checks.request(101, sha, "main")
        checker = DataChecker(
            gateway=parts.gateway, index=parts.index, storage=parts.storage, public_url=PUBLIC
        )
        calls = simulator.world.total_calls()
        started = time.perf_counter()
        report = run_data_checks(
            parts.data_checks, checker, parts.gateway, parts.status_credential, parts.index, settle=0
        )
        seconds = time.perf_counter() - started
        posted = simulator.world.status_posts[-1]
        print(
            f"{datasets} .dvc files, {len(rows):,} objects indexed, {missing} missing per dataset: "
            f"{seconds:.2f} s, {simulator.world.total_calls() - calls} GitLab calls, "
            f'{report.posted} statuses; last: {posted["state"]} "{posted["description"]}"'
        )
    finally:
        simulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--files", type=int, default=1000, help="files per dataset")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for missing in (0, 1):
            one(Path(work), args.datasets, args.files, missing)


if __name__ == "__main__":
    main()
