"""Every GitLab credential with the real `dvc` client against the registry under gunicorn: deploy tokens,
CI job tokens, CI ID tokens; and what DVC prints when GitLab refuses one."""

from __future__ import annotations

import filecmp
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.harness import RegistryServer, Simulator, start_registry
from tests.conftest import TOKENS
from tests.e2e.dvc import Dvc, same_tree, workspace

pytestmark = pytest.mark.e2e
SERVICE_TOKEN = "glpat-service-admin-token-1"
AUDIENCE = "https://data-registry.test"
VISION = "ml/vision"
SECRETS = {
    "rw_deploy": "gldt-vision-read-write-0001",
    "ro_deploy": "gldt-vision-read-only-00002",
    "expired_deploy": "gldt-vision-expired-000004",
    "job": "glcbt-vision-running-job-5001",
    "finished_job": "glcbt-vision-finished-job-5002",
    "pipeline_job": "glcbt-pipeline-running-job-5003",
    "reporter_job": "glcbt-vision-reporter-job-5004",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(
        tmp_path_factory.mktemp("registry"),
        gitlab.url,
        REGISTRY_GITLAB_SERVICE_TOKEN=SERVICE_TOKEN,
        REGISTRY_ID_TOKEN_AUDIENCE=AUDIENCE,
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    (root / "data").mkdir()
    for i in range(30):
        (root / "data" / f"{i}.bin").write_bytes(os.urandom(100 + i * 50))
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    return root


def round_trip(dvc: Dvc, remote: str, dataset: Path) -> None:
    """Push, forget everything local, pull, compare byte for byte."""
    pushed = dvc.run("push", "-r", remote)
    assert "32 files pushed" in pushed.stdout, pushed.stdout
    dvc.forget_local_data()
    dvc.run("pull", "-r", remote)
    assert same_tree(dataset / "data", dvc.root / "data")
    assert filecmp.cmp(dataset / "big.bin", dvc.root / "big.bin", shallow=False)


def refused(dvc: Dvc, remote: str) -> str:
    """Push something new; return what dvc printed after it failed."""
    (dvc.root / "new.txt").write_text(f"new content for {remote}\n")
    dvc.run("add", "new.txt")
    pushed = dvc.run("push", "-r", remote, ok=False)
    assert pushed.returncode != 0, pushed.stdout
    return pushed.stdout + pushed.stderr


def url(registry: RegistryServer, prefix: str, project: str = VISION) -> str:
    return f"{registry.url}/{project}/-/data/{prefix}"


def test_deploy_token_with_basic_auth(registry: RegistryServer, dataset: Path, tmp_path: Path) -> None:
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote(
        "r", url(registry, "deploy"), auth="basic", token=SECRETS["rw_deploy"], user="gitlab+deploy-token-1"
    )
    round_trip(dvc, "r", dataset)


def test_read_only_deploy_token_pulls_but_cannot_push(
    registry: RegistryServer, dataset: Path, tmp_path: Path
) -> None:
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote(
        "rw",
        url(registry, "ro-deploy"),
        auth="basic",
        token=SECRETS["rw_deploy"],
        user="gitlab+deploy-token-1",
    )
    dvc.add_remote(
        "ro",
        url(registry, "ro-deploy"),
        auth="basic",
        token=SECRETS["ro_deploy"],
        user="gitlab+deploy-token-2",
    )
    dvc.run("push", "-r", "rw")
    dvc.forget_local_data()
    dvc.run("pull", "-r", "ro")
    assert same_tree(dataset / "data", dvc.root / "data")
    assert f"Token scope write_package_registry required to write to {VISION}" in refused(dvc, "ro")


def test_job_token_with_basic_auth(registry: RegistryServer, dataset: Path, tmp_path: Path) -> None:
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote("r", url(registry, "job"), auth="basic", token=SECRETS["job"], user="gitlab-ci-token")
    round_trip(dvc, "r", dataset)


def test_allowlisted_job_of_another_project(registry: RegistryServer, dataset: Path, tmp_path: Path) -> None:
    """ml/vision's job-token allowlist lets ml/pipeline in; the job's user is a Developer of ml/vision."""
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote(
        "r",
        url(registry, "pipeline-job"),
        auth="basic",
        token=SECRETS["pipeline_job"],
        user="gitlab-ci-token",
    )
    round_trip(dvc, "r", dataset)


def test_job_of_a_reporter_cannot_push(registry: RegistryServer, dataset: Path, tmp_path: Path) -> None:
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote(
        "r",
        url(registry, "reporter-job"),
        auth="basic",
        token=SECRETS["reporter_job"],
        user="gitlab-ci-token",
    )
    assert f"Developer role required to write to {VISION}" in refused(dvc, "r")


def test_ci_id_token_with_bearer(
    registry: RegistryServer, gitlab: Simulator, dataset: Path, tmp_path: Path
) -> None:
    dvc = workspace(tmp_path, dataset)
    id_token = gitlab.world.mint_id_token(SECRETS["job"], AUDIENCE)
    dvc.add_remote("r", url(registry, "id-token"), auth="bearer", token=id_token)
    round_trip(dvc, "r", dataset)
    other = url(registry, "id-token", project="ml/open-data")
    dvc.add_remote("other", other, auth="bearer", token=id_token)
    assert "A CI ID token only reaches its own project" in refused(dvc, "other")


def test_ci_id_token_for_another_audience_is_refused(
    registry: RegistryServer, gitlab: Simulator, dataset: Path, tmp_path: Path
) -> None:
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote(
        "r",
        url(registry, "aud"),
        auth="bearer",
        token=gitlab.world.mint_id_token(SECRETS["job"], "https://elsewhere.example"),
    )
    assert f"CI ID token audience must be {AUDIENCE}" in refused(dvc, "r")


@pytest.mark.parametrize(
    ("auth", "user", "secret", "message"),
    [
        (
            "basic",
            "gitlab-ci-token",
            SECRETS["finished_job"],
            "CI job token is invalid, or its job is no longer running",
        ),
        ("bearer", "", TOKENS["expired"], "GitLab token has expired"),
        ("bearer", "", TOKENS["revoked"], "GitLab token has been revoked"),
        ("basic", "gitlab+deploy-token-4", SECRETS["expired_deploy"], "Deploy token expired on 2025-01-01"),
    ],
)
def test_refusals_say_why(
    registry: RegistryServer, dataset: Path, tmp_path: Path, auth: str, user: str, secret: str, message: str
) -> None:
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote("r", url(registry, "refused"), auth=auth, token=secret, user=user or "x")
    assert message in refused(dvc, "r")


def test_no_credential_in_the_logs(registry: RegistryServer, gitlab: Simulator) -> None:
    """Runs last in this module, on the server every test above used."""
    log = registry.log_text()
    assert "/ml/vision/-/data/" in log
    for secret in (*SECRETS.values(), *TOKENS.values(), SERVICE_TOKEN):
        assert secret not in log
    assert "eyJ" not in log  # no JWT (their header always starts so)


def test_a_push_to_a_mistyped_project_says_why(
    registry: RegistryServer, dataset: Path, tmp_path: Path
) -> None:
    """DVC prints a refused upload's reason phrase, never a 404's: a project that does not exist (or that
    the token cannot see) is one 403 for writes."""
    dvc = workspace(tmp_path, dataset)
    dvc.add_remote("r", url(registry, "typo", project="ml/visoin"), auth="bearer", token=TOKENS["developer"])
    assert "Project ml/visoin does not exist or you cannot write to it" in refused(dvc, "r")


def test_a_job_token_on_its_own_projects_path_without_a_service_token(
    gitlab: Simulator, dataset: Path, tmp_path: Path
) -> None:
    """No REGISTRY_GITLAB_SERVICE_TOKEN: GitLab's /job answer names the job's project, so the README's
    path-style URL works for a CI job; another project's path still needs the service token and says so."""
    bare = start_registry(tmp_path / "bare", gitlab.url)
    try:
        dvc = workspace(tmp_path, dataset)
        dvc.add_remote("r", url(bare, "ci"), auth="basic", token=SECRETS["job"], user="gitlab-ci-token")
        round_trip(dvc, "r", dataset)
        other = url(bare, "ci", project="ml/pipeline")
        dvc.add_remote("other", other, auth="basic", token=SECRETS["job"], user="gitlab-ci-token")
        assert "only when the registry has a service token" in refused(dvc, "other")
    finally:
        bare.stop()
