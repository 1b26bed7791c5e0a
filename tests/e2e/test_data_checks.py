"""Data checks end to end (DESIGN 3.12): the registry under gunicorn takes GitLab's documented push and
merge request hooks, `data-registry worker --once data_checks` (the real worker process) sets the commit
statuses on the GitLab simulator, and the real `dvc push` turns a failed commit green without another
event."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.harness import BIN, RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS
from tests.e2e.dvc import Dvc
from tests.e2e.gitlab_hooks import deliver, merge_request_payload, push_payload

pytestmark = pytest.mark.e2e
SECRET = "hook-secret-0123456789"
PUBLIC = "https://data.example.com"
VISION = 101


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(
        tmp_path_factory.mktemp("registry"),
        gitlab.url,
        REGISTRY_WEBHOOK_SECRET=SECRET,
        REGISTRY_GITLAB_SERVICE_TOKEN=TOKENS["admin"],
        REGISTRY_PUBLIC_URL=PUBLIC,
        REGISTRY_DATA_CHECK_SETTLE="1",
    )
    yield server
    server.stop()


def worker(registry: RegistryServer) -> None:
    done = subprocess.run(
        [BIN / "data-registry", "worker", "--once", "data_checks"],
        env=registry.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def project(tmp_path: Path, registry: RegistryServer, files: int = 40) -> Dvc:
    """A DVC project with a directory of `files` files and one model file, its remote this registry."""
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    for i in range(files):
        (root / "data" / f"sample-{i:03d}.csv").write_text(f"id,value\n{i},{i * i}\n{tmp_path.name}\n")
    (root / "model.pkl").write_bytes(tmp_path.name.encode() * 100)
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data", "model.pkl")
    dvc.add_remote(
        "registry", f"{registry.url}/ml/vision/-/data/dvc", auth="bearer", token=TOKENS["developer"]
    )
    dvc.run("remote", "default", "registry")
    return dvc


def commit(gitlab: Simulator, dvc: Dvc, branch: str = "main") -> str:
    """Commit the DVC project's tracked files (what `git add .dvc data.dvc model.pkl.dvc` keeps)."""
    files = {
        ".dvc/config": (dvc.root / ".dvc" / "config").read_bytes(),
        "data.dvc": (dvc.root / "data.dvc").read_bytes(),
        "model.pkl.dvc": (dvc.root / "model.pkl.dvc").read_bytes(),
        "README.md": b"# vision\n",
    }
    return gitlab.world.commit(VISION, branch, files, "Add data")


def statuses(gitlab: Simulator, sha: str) -> list[tuple[str, str, str]]:
    return [(p["state"], p["description"], p["ref"]) for p in gitlab.world.status_posts if p["sha"] == sha]


def test_a_push_without_its_data_fails_then_turns_green_after_dvc_push(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    dvc = project(tmp_path, registry)
    sha = commit(gitlab, dvc)
    started = time.monotonic()
    answer = deliver(registry.url, SECRET, push_payload(VISION, "ml/vision", sha))
    assert time.monotonic() - started < 1
    assert answer.status_code == 200 and answer.json() == {"event": "push", "outcome": "data check queued"}

    worker(registry)
    assert statuses(gitlab, sha) == [
        ("pending", "Checking that the data this commit names is in the registry", "main"),
        (
            "failed",
            "data.dvc: not pushed (40 files); model.pkl.dvc: not pushed (1 file) — run dvc push",
            "main",
        ),
    ]
    parent = gitlab.world.commits[VISION][sha]["parent_ids"]
    compare = f"?compare={parent[0]}...{sha}" if parent else f"?ref={sha}"
    assert gitlab.world.status_posts[-1]["target_url"] == f"{PUBLIC}/ml/vision/-/data/{compare}"

    assert "42 files pushed" in dvc.run("push").stdout
    time.sleep(1.5)  # REGISTRY_DATA_CHECK_SETTLE: the push has finished
    worker(registry)  # no other hook event
    assert statuses(gitlab, sha)[-1] == ("success", "2 datasets, 41 files, all in the registry", "main")
    worker(registry)
    assert len(statuses(gitlab, sha)) == 3  # nothing changed: nothing posted


def test_a_merge_requests_last_commit_gets_its_status(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    dvc = project(tmp_path, registry, files=5)
    dvc.run("push")
    sha = commit(gitlab, dvc, branch="feature")
    payload = merge_request_payload(VISION, "ml/vision", sha, source_branch="feature")
    answer = deliver(registry.url, SECRET, payload)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"event": "merge_request", "outcome": "data check queued"}
    worker(registry)
    assert statuses(gitlab, sha)[-1] == ("success", "2 datasets, 6 files, all in the registry", "feature")


def test_a_burst_of_twenty_events_makes_a_handful_of_posts(
    registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    dvc = project(tmp_path, registry, files=3)
    sha = commit(gitlab, dvc, branch="burst")
    payloads = [
        push_payload(VISION, "ml/vision", sha, branch="burst", system=i % 3 == 0)
        if i % 2
        else merge_request_payload(VISION, "ml/vision", sha, source_branch="burst", action="update")
        for i in range(20)
    ]
    answers: list[tuple[int, float]] = []

    def send(payload: dict[str, object]) -> None:
        started = time.monotonic()
        code = deliver(registry.url, SECRET, payload, system="object_kind" not in payload).status_code
        answers.append((code, time.monotonic() - started))

    threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    checker = threading.Thread(target=worker, args=(registry,))  # a worker runs while they arrive
    checker.start()
    for thread in threads:
        thread.join()
    checker.join()
    worker(registry)
    assert len(answers) == 20 and all(code == 200 for code, _ in answers)
    assert max(seconds for _, seconds in answers) < 1, answers
    posted = statuses(gitlab, sha)
    assert 1 <= len(posted) <= 3, posted
    assert posted[-1][0] == "failed" and posted[-1][2] == "burst"
