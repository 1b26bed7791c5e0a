"""The scale-curve benchmark runs on either database (its bulk fill is SQL of each dialect) and measures
every request it names at every level; its numbers are read by people, never asserted on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

MEASURED = ("HEAD", "GET (302)", "PUT 4 KB", "PROPFIND page", "PROPFIND files/md5", "API list page", "usage")


def test_scale_curve_fills_and_measures_every_level() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.bench.scale_curve",
            *("--levels", "1000", "3000", "--rounds", "10"),
            "--no-plot",
        ],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if re.match(r"\s+[\d,]+ \| HEAD", line)]
    assert [row.split("|")[0].strip() for row in rows] == ["1,000", "3,000"]
    for row in rows:
        for name in (*MEASURED, "DELETE"):
            assert re.search(rf"{re.escape(name)} [\d.]+/[\d.]+", row), (name, row)
    assert "filled to 3,000 objects" in done.stdout  # the bulk fill wrote the index up to the level
