"""The litmus WebDAV suite (Debian's `litmus`, neon) against the registry under gunicorn: `basic`, `copymove`
and `props` pass except the deliberate deviations listed here (README: "WebDAV"); `locks` is reported."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts.harness import RegistryServer
from tests.conftest import TOKENS
from tests.e2e.dav_clients import fresh_folder, require_tool

pytestmark = pytest.mark.e2e

# (suite, test) -> why the registry answers otherwise than RFC 4918 asks, on purpose. The other deviation
# (a PUT needs no parent collection: DVC's http remote never sends MKCOL) is not one litmus 0.13 sees: its
# `put_no_parent` sends an MKCOL under a missing collection, which the registry refuses (409) as asked.
DEVIATIONS = {
    ("basic", "mkcol_again"): (
        "MKCOL on an existing collection answers 201: DVC's webdav remote MKCOLs every parent before each "
        "upload and would otherwise PROPFIND first (research/dvc-webdav-protocol.md)"
    ),
}


@dataclass
class Outcome:
    """One litmus test's result and the lines litmus printed for it."""

    suite: str
    name: str
    result: str = ""
    lines: list[str] = field(default_factory=list)


def parse(output: str) -> tuple[list[Outcome], set[str]]:
    """litmus's progress output (one '\\r'-rewritten line per test, failure reasons may span lines) as
    outcomes in order, and the suites whose summary line was printed."""
    outcomes: list[Outcome] = []
    finished = set()
    suite = ""
    for raw in output.split("\n"):  # not splitlines(): litmus rewrites a line with '\r'
        line = raw.split("\r")[-1]
        if started := re.match(r"-> running `(\w+)'", line):
            suite = started.group(1)
        elif summary := re.match(r"<- summary for `(\w+)'", line):
            finished.add(summary.group(1))
        elif test := re.match(r"\s*\d+\. (\w+)\.* ?(.*)$", line):
            outcomes.append(Outcome(suite, test.group(1), lines=[line]))
            if result := re.match(r"(pass|FAIL|SKIPPED)\b", test.group(2)):
                outcomes[-1].result = result.group(1)
        elif outcomes and line.strip():
            outcomes[-1].lines.append(line)
            if not outcomes[-1].result and (result := re.match(r"\s*\.+ (pass|FAIL|SKIPPED)\b", line)):
                outcomes[-1].result = result.group(1)
    return outcomes, finished


def run_litmus(registry: RegistryServer, suites: str, cwd: Path) -> str:
    """litmus -k over suites in a fresh collection of the project, as a Maintainer over HTTP Basic."""
    litmus = require_tool("litmus")
    url = fresh_folder(registry, "litmus")
    done = subprocess.run(
        [litmus, "-k", url, "litmus-user", TOKENS["maintainer"]],
        env={"TESTS": suites, "PATH": "/usr/bin:/bin"},
        cwd=cwd,  # litmus writes debug.log and child.log into its working directory
        capture_output=True,  # bytes: text mode would turn litmus's '\r' into line ends
        timeout=300,
    )
    return (done.stdout + done.stderr).decode(errors="replace")


def test_basic_copymove_props_pass_but_for_the_deviations(registry: RegistryServer, tmp_path: Path) -> None:
    output = run_litmus(registry, "basic copymove props", tmp_path)
    outcomes, finished = parse(output)
    assert finished == {"basic", "copymove", "props"}, f"litmus did not finish every suite:\n{output}"
    unexpected = [o for o in outcomes if o.result != "pass" and (o.suite, o.name) not in DEVIATIONS]
    shown = "\n".join(line for o in unexpected for line in [f"[{o.suite}]", *o.lines])
    summaries = "\n".join(re.findall(r"^<- summary.*$", output, re.M))
    if unexpected:
        pytest.fail(f"litmus failures that are no listed deviation:\n{shown}\n{summaries}", pytrace=False)
    passing = [o for o in outcomes if o.result == "pass" and (o.suite, o.name) in DEVIATIONS]
    assert not passing, (
        "now passing, so no longer a deviation (drop it here and in the README): "
        + ", ".join(f"{o.suite}/{o.name}" for o in passing)
    )


def test_locks_result_is_reported(
    registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a gate (issue 25 asks for the result in its closing note): litmus `locks`, printed."""
    output = run_litmus(registry, "locks", tmp_path)
    outcomes, finished = parse(output)
    with capsys.disabled():
        print("\nlitmus locks:")
        for outcome in outcomes:
            print("\n".join(outcome.lines))
        print("\n".join(re.findall(r"^<- .*$", output, re.M)))
    assert "locks" in finished, output
