"""The CI fragment users include (scripts/gitlab-ci/data-registry.gitlab-ci.yml): its before_script lines,
run as GitLab would run them in a job of ml/vision, configure a remote the real `dvc` pushes to and pulls
from, with the job token and with a CI ID token, and leave no secret in anything Git tracks."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scripts.harness import BIN, RegistryServer, Simulator, start_registry
from tests.e2e.dvc import same_tree

pytestmark = pytest.mark.e2e
FRAGMENT = Path(__file__).resolve().parents[2] / "scripts" / "gitlab-ci" / "data-registry.gitlab-ci.yml"
AUDIENCE = "https://data-registry.test"
JOB_TOKEN = "glcbt-vision-running-job-5001"  # a running job of ml/vision in the simulated GitLab


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    """No service token: a job reaches its own project's path-style URL without one."""
    server = start_registry(
        tmp_path_factory.mktemp("registry"), gitlab.url, REGISTRY_ID_TOKEN_AUDIENCE=AUDIENCE
    )
    yield server
    server.stop()


def run(command: str | list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shell = ["bash", "-ec", command] if isinstance(command, str) else command
    done = subprocess.run(shell, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def job_checkout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A Git repository with DVC-tracked data, committed, as a CI job's checkout has it."""
    repo = tmp_path / "checkout"
    (repo / "data").mkdir(parents=True)
    for i in range(20):
        (repo / "data" / f"{i}.csv").write_text(f"row,{i}\n" * (i + 1))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # dvc is there: the fragment skips pip install
        "DVC_SITE_CACHE_DIR": str(tmp_path / "site-cache"),
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@example.com",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@example.com",
    }
    for command in ("git init -q", "dvc init -q", "dvc add -q data", "git add -A", "git commit -qm data"):
        run(command, repo, env)
    return repo, env


@pytest.mark.parametrize("template", [".data-registry", ".data-registry-id-token"])
def test_fragment_pushes_and_pulls_and_leaks_nothing(
    template: str, registry: RegistryServer, gitlab: Simulator, tmp_path: Path
) -> None:
    job = yaml.safe_load(FRAGMENT.read_text())[template]
    variables = {
        **yaml.safe_load(FRAGMENT.read_text())[".data-registry"]["variables"],
        **job.get("variables", {}),
    }
    repo, env = job_checkout(tmp_path)
    secret = gitlab.world.mint_id_token(JOB_TOKEN, AUDIENCE) if "id_tokens" in job else JOB_TOKEN
    env |= {
        **variables,
        "DATA_REGISTRY_URL": registry.url + "/",
        "DATA_REGISTRY_PREFIX": f"ci{template.replace('.', '-')}",
        "CI_PROJECT_PATH": "ml/vision",
        "CI_JOB_TOKEN": JOB_TOKEN,
        "REGISTRY_ID_TOKEN": secret,
    }
    assert "pip install" in job["before_script"][1]
    for line in job["before_script"]:
        run(line, repo, env)

    pushed = run(["dvc", "push"], repo, env)
    assert "21 files pushed" in pushed.stdout, pushed.stdout  # 20 files and the .dir
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    run(["dvc", "pull"], repo, env)
    original = tmp_path / "original"
    (original / "data").mkdir(parents=True)
    for i in range(20):
        (original / "data" / f"{i}.csv").write_text(f"row,{i}\n" * (i + 1))
    assert same_tree(original / "data", repo / "data")

    assert secret in (repo / ".dvc" / "config.local").read_text()  # where it went: ignored by Git
    status = run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored=no"], repo, env).stdout
    changed = [line[3:] for line in status.splitlines()]
    for path in [*changed, *run(["git", "ls-files"], repo, env).stdout.split()]:
        assert secret not in (repo / path).read_text(errors="replace"), f"the token is in {path}"
    assert ".dvc/config" not in changed  # the committed config is untouched


def test_fragment_without_the_registry_url_says_what_to_set(tmp_path: Path) -> None:
    job = yaml.safe_load(FRAGMENT.read_text())[".data-registry"]
    done = subprocess.run(
        ["bash", "-ec", job["before_script"][0]],
        env={**os.environ, "DATA_REGISTRY_URL": ""},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "set DATA_REGISTRY_URL" in done.stdout
