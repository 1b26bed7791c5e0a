"""Coming over from the hack: the real `dvc` pushes a repository into the simulated GitLab's generic
packages (DVC's http remote with `method PUT`, exactly as users did), `data-registry
import-generic-packages` copies it into the registry, and `dvc pull` from the registry is byte-identical.
Also: a second run copies nothing, a run killed half-way and run again completes, GitLab's 429s slow it
down but it completes, `--dry-run` writes nothing, and a token without access is told so."""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from scripts.harness import BIN, RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS
from tests.e2e.dvc import Dvc, same_tree

pytestmark = pytest.mark.e2e
DEV = TOKENS["developer"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry"), gitlab.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hack(gitlab: Simulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Dvc, str]:
    """A DVC repository pushed into ml/vision's generic packages: 60 small files in a directory, one
    30 MB file, and a lone small file."""
    root = tmp_path_factory.mktemp("hack") / "repo"
    (root / "data" / "nested").mkdir(parents=True)
    for i in range(60):
        (root / "data" / ("nested" if i % 2 else "") / f"{i}.txt").write_bytes(os.urandom(50 + i * 13))
    (root / "weights.bin").write_bytes(os.urandom(30 * 1024 * 1024))
    (root / "notes.md").write_text("# notes\n")
    dvc = Dvc(root)
    dvc.run("init", "--no-scm")
    dvc.run("add", "data", "weights.bin", "notes.md")
    source = f"{gitlab.url}/api/v4/projects/101/packages/generic/dvc"
    dvc.run("remote", "add", "-d", "gitlab", source)
    dvc.run("remote", "modify", "gitlab", "method", "PUT")
    dvc.run("remote", "modify", "gitlab", "auth", "custom")
    dvc.run("remote", "modify", "gitlab", "custom_auth_header", "PRIVATE-TOKEN")
    dvc.run("remote", "modify", "--local", "gitlab", "password", DEV)
    assert "63 files pushed" in dvc.run("push").stdout  # 61 files, the .dir, and the rest
    return dvc, source


def importer(source: str, dest: str, *args: str, token: str = DEV) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "data-registry", "import-generic-packages", source, dest, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "GITLAB_TOKEN"},
    )


def stored(registry: RegistryServer, prefix: str) -> list[str]:
    return registry.stored_keys(f"projects/101/{prefix}/")


def test_import_then_pull_from_the_registry(
    registry: RegistryServer, gitlab: Simulator, hack: tuple[Dvc, str], tmp_path: Path
) -> None:
    dvc, source = hack
    dest = f"{registry.url}/ml/vision/-/data/imported"
    dry = importer(source, dest, "--dry-run")
    assert dry.returncode == 0 and "63 files under" in dry.stdout and "would copy files/md5/" in dry.stdout
    assert stored(registry, "imported") == []  # a dry run writes nothing

    started = time.monotonic()
    done = importer(source, dest, "--jobs", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied 63 files, skipped 0 already there, 0 failed, 0 missing" in done.stdout
    assert f"dvc remote modify <remote> url {dest}" in done.stdout
    assert len(stored(registry, "imported")) == 63
    assert time.monotonic() - started < 300

    again = importer(source, dest)
    assert again.returncode == 0 and "63 already in the registry, 0 to copy" in again.stdout  # nothing moves

    clone = tmp_path / "clone"
    shutil.copytree(
        dvc.root, clone, ignore=shutil.ignore_patterns("cache", "data", "weights.bin", "notes.md")
    )
    pulled = Dvc(clone)
    pulled.add_remote("registry", dest, auth="bearer", token=DEV)
    pulled.run("pull", "-r", "registry")
    assert same_tree(dvc.root / "data", clone / "data")
    assert filecmp.cmp(dvc.root / "weights.bin", clone / "weights.bin", shallow=False)
    assert (clone / "notes.md").read_text() == "# notes\n"


def test_a_killed_import_completes_when_run_again(
    registry: RegistryServer, gitlab: Simulator, hack: tuple[Dvc, str]
) -> None:
    _, source = hack
    dest = f"{registry.url}/ml/vision/-/data/killed"
    run = subprocess.Popen(
        [BIN / "data-registry", "import-generic-packages", source, dest, "--token", DEV, "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stored(registry, "killed")) < 10:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    partial = len(stored(registry, "killed"))
    assert 10 <= partial < 63
    done = importer(source, dest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{partial} already in the registry" in done.stdout or "already in the registry" in done.stdout
    assert len(stored(registry, "killed")) == 63


def test_gitlab_rate_limiting_slows_it_but_it_completes(
    registry: RegistryServer, gitlab: Simulator, hack: tuple[Dvc, str]
) -> None:
    _, source = hack
    dest = f"{registry.url}/ml/vision/-/data/throttled"
    world = gitlab.world
    world.fault, world.fault_count, world.fault_retry_after = 429, 6, 1  # "slow down" 6 times, 1 s each
    try:
        started = time.monotonic()
        done = importer(source, dest, "--jobs", "8")
        took = time.monotonic() - started
    finally:
        world.fault, world.fault_count, world.fault_retry_after = None, None, 7
    assert done.returncode == 0, done.stdout + done.stderr
    assert "GitLab asked to slow down or failed 6 times (retried)" in done.stdout
    assert took >= 6 / 8  # it waited as asked (eight copies at a time share the six seconds)
    assert len(stored(registry, "throttled")) == 63


def test_memory_stays_bounded_with_a_large_file(registry: RegistryServer, hack: tuple[Dvc, str]) -> None:
    """The 30 MB file streams through: the importer's resident memory stays far below it."""
    _, source = hack
    run = subprocess.Popen(
        [
            BIN / "data-registry",
            "import-generic-packages",
            source,
            f"{registry.url}/ml/vision/-/data/rss",
            "--token",
            DEV,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process, peak = psutil.Process(run.pid), 0
    while run.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    assert run.returncode == 0
    assert peak < 100 * 1024 * 1024, peak  # Python, requests and 8 × 1 MiB chunks in flight


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (TOKENS["outsider"], "GitLab knows no such project, or the token cannot see it (404)"),
        ("glpat-not-a-real-token", "GitLab refused the token (401)"),
    ],
)
def test_a_token_without_access_is_told_so(
    registry: RegistryServer, hack: tuple[Dvc, str], token: str, problem: str
) -> None:
    _, source = hack
    done = importer(source, f"{registry.url}/ml/vision/-/data/refused", token=token)
    assert done.returncode == 1 and problem in done.stderr, done.stderr


def test_wrong_urls_are_named(registry: RegistryServer) -> None:
    done = importer("https://gitlab.example.com/ml/vision", f"{registry.url}/ml/vision/-/data/x")
    assert done.returncode == 2 and "Not a generic packages URL" in done.stderr
