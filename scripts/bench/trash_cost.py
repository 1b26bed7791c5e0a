"""The cost of the trash on a big `dvc gc -c`: Registry.delete_collection of N objects (a Maintainer's
token against the GitLab simulator, local disk, SQLite) with the trash on (rows marked, bytes kept) against
the trash off (rows and files deleted) in the same run; then what the worker's purge of those N costs."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from app.components import build_components
from app.db import upgrade
from app.model.identity import Credential, CredentialKind
from app.model.projects import Project, ProjectRef, Visibility
from app.trash import purge_trash
from scripts.harness import fresh_database_url, start_simulator
from scripts.seed import seed_project

MAINTAINER = Credential(CredentialKind.BEARER, "glpat-maintainer-token-0001")


def delete_all(work: Path, gitlab_url: str, objects: int, retention: int) -> tuple[float, float]:
    """Seconds for the collection delete, and for purging the trash afterwards (0 without a trash)."""
    root = work / f"retention-{retention}"
    root.mkdir()
    parts = build_components(
        {
            "storage_url": f"file://{root}",
            "database_url": fresh_database_url(root),
            "gitlab_url": gitlab_url,
            "trash_retention": str(retention),
        }
    )
    upgrade(parts.settings.effective_database_url)
    seed_project(parts.settings, 101, "ml/vision", objects)
    started = time.perf_counter()
    deleted = parts.registry.delete_collection(MAINTAINER, ProjectRef(id=101), "files")
    delete_seconds = time.perf_counter() - started
    assert deleted == objects
    if not retention:
        return delete_seconds, 0.0
    started = time.perf_counter()
    report = purge_trash(
        parts.index, parts.storage, [Project(101, "ml/vision", Visibility.PRIVATE)], retention=0
    )
    assert report.objects == objects
    return delete_seconds, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-trash-"))
    simulator = start_simulator()
    try:
        final, _ = delete_all(work, simulator.url, args.objects, retention=0)
        trashed, purge = delete_all(work, simulator.url, args.objects, retention=7 * 86400)
    finally:
        simulator.stop()
        shutil.rmtree(work, ignore_errors=True)
    n = args.objects
    print(f"gc -c of {n:,} objects, trash off (rows and files deleted): {final:.1f} s ({n / final:,.0f}/s)")
    print(
        f"gc -c of {n:,} objects, trash on (rows marked):            {trashed:.1f} s ({n / trashed:,.0f}/s)"
    )
    print(f"ratio trash on / off: {trashed / final:.2f}")
    print(f"the worker's purge of those {n:,} later:                     {purge:.1f} s ({n / purge:,.0f}/s)")


if __name__ == "__main__":
    main()
