"""Time to compare two 100,000-file `.dir` manifests (the compare page's work for one dataset): the diff
alone (manifests already parsed, as the datasets cache keeps them by md5), and cold (both manifests'
bytes parsed first, the way the registry reads them), median and worst of several runs.

    .venv/bin/python -m scripts.bench.compare_manifests [--files 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from app.dataset_compare import diff_manifests
from app.dataset_tree import ManifestTree


def manifests(files: int) -> tuple[bytes, bytes]:
    """Two versions of a dataset as DVC writes them: 1 % of the files removed, 1 % added, 10 % changed."""
    before = [{"md5": f"{i:032x}", "relpath": f"images/{i % 100:02d}/{i:07d}.jpg"} for i in range(files)]
    after = [
        {"md5": e["md5"] if i % 10 else f"{i + files:032x}", "relpath": e["relpath"]}
        for i, e in enumerate(before)
        if i >= files // 100
    ]
    after += [{"md5": f"{i:032x}", "relpath": f"new/{i:07d}.jpg"} for i in range(files // 100)]
    ordered = sorted(after, key=lambda e: e["relpath"])
    return json.dumps(sorted(before, key=lambda e: e["relpath"])).encode(), json.dumps(ordered).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    old_raw, new_raw = manifests(args.files)
    old, new = ManifestTree.parse(old_raw).entries, ManifestTree.parse(new_raw).entries
    warm, cold = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        diff = diff_manifests(old, new)
        warm.append(time.perf_counter() - started)
        started = time.perf_counter()
        diff_manifests(ManifestTree.parse(old_raw).entries, ManifestTree.parse(new_raw).entries)
        cold.append(time.perf_counter() - started)
    print(
        f"{args.files:,} vs {len(new):,} files "
        f"({len(old_raw) / 2**20:.1f} + {len(new_raw) / 2**20:.1f} MiB of JSON): "
        f"{diff.added:,} added, {diff.removed:,} removed, {diff.changed:,} changed"
    )
    for label, times in (("diff (parsed, cached)", warm), ("parse both + diff (cold)", cold)):
        best, median, worst = min(times), statistics.median(times), max(times)
        print(f"{label}: best {best:.3f} s, median {median:.3f} s, worst {worst:.3f} s")


if __name__ == "__main__":
    main()
