"""`data-registry doctor URL` against the registry under gunicorn: for every credential kind it says who
the credential is and what it may do, and for each usual mistake it names the problem DVC does not. A URL
that redirects to another origin gets no credential there, and doctor says so."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

from scripts.harness import BIN, RegistryServer, Simulator, serve_in_thread, start_registry
from tests.conftest import TOKENS

pytestmark = pytest.mark.e2e
AUDIENCE = "https://data-registry.test"
JOB = "glcbt-vision-running-job-5001"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator) -> Iterator[RegistryServer]:
    server = start_registry(
        tmp_path_factory.mktemp("registry"),
        gitlab.url,
        REGISTRY_GITLAB_SERVICE_TOKEN="glpat-service-admin-token-1",
        REGISTRY_ID_TOKEN_AUDIENCE=AUDIENCE,
    )
    yield server
    server.stop()


def doctor(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GITLAB_TOKEN", "DATA_REGISTRY_TOKEN", "CI_JOB_TOKEN")
    }
    done = subprocess.run(
        [BIN / "data-registry", "doctor", url, *args],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_developer_token_works_everywhere(registry: RegistryServer) -> None:
    code, said = doctor(f"{registry.url}/ml/vision/-/data/dvc", env={"GITLAB_TOKEN": TOKENS["developer"]})
    assert code == 0, said
    assert "access token of @dev (user 3); scopes api; no expiry" in said
    assert "ml/vision (id 101), your role: Developer" in said
    assert "read  yes" in said and "write  yes" in said
    assert "delete  no: Maintainer role required to delete from ml/vision" in said
    assert "http remote  ok" in said and "webdav remote  ok" in said
    assert "the registry is 0." in said  # same machine: well under a second apart


@pytest.mark.parametrize(
    ("args", "env", "kind"),
    [
        (
            ["--user", "gitlab+deploy-token-1"],
            {"DATA_REGISTRY_TOKEN": "gldt-vision-read-write-0001"},
            "deploy token gitlab+deploy-token-1 (no user)",
        ),
        (
            [],
            {"CI_JOB_TOKEN": JOB},
            "CI job token of @dev (user 3), a job of project 101; valid until the job ends",
        ),
        ([], {"DATA_REGISTRY_TOKEN": "oauth-developer-access-token-0001"}, "OAuth token of @dev (user 3)"),
    ],
)
def test_every_credential_kind_is_named(
    registry: RegistryServer, args: list[str], env: dict[str, str], kind: str
) -> None:
    code, said = doctor(f"{registry.url}/ml/vision/-/data/dvc", *args, env=env)
    assert code == 0, said
    assert kind in said


def test_a_ci_id_token_is_named(registry: RegistryServer, gitlab: Simulator) -> None:
    token = gitlab.world.mint_id_token(JOB, AUDIENCE)
    code, said = doctor(f"{registry.url}/ml/vision/-/data", "--token", token)
    assert code == 0 and "CI ID token of @dev (user 3), a job of project 101" in said and "expires" in said


@pytest.mark.parametrize(
    ("url_path", "token", "problem", "exit_code"),
    [
        (
            "ml/vision/-/data/dvc",
            "glpat-not-a-real-token",
            "refused: GitLab token is invalid, expired or revoked",
            1,
        ),
        ("ml/vision/-/data/dvc", TOKENS["expired"], "refused: GitLab token has expired", 1),
        (
            "ml/vision/-/data/dvc",
            TOKENS["reporter"],
            "write  no: Developer role required to write to ml/vision",
            0,
        ),
        ("ml/vision/-/data/dvc", TOKENS["outsider"], "read  no: Project ml/vision not found", 1),
        ("ml/visoin/-/data/dvc", TOKENS["developer"], "read  no: Project ml/visoin not found", 1),
        ("ml/vision/dvc", TOKENS["developer"], "The URL has no /-/data/ part", 2),
    ],
)
def test_usual_mistakes_are_named(
    registry: RegistryServer, url_path: str, token: str, problem: str, exit_code: int
) -> None:
    code, said = doctor(f"{registry.url}/{url_path}", "--token", token)
    assert problem in said, said
    assert code == exit_code


def test_whoami_answers_curl_users_the_same(registry: RegistryServer) -> None:
    answer = requests.get(
        f"{registry.url}/api/v1/whoami",
        params={"project": "ml/vision"},
        headers={"Authorization": f"Bearer {TOKENS['reporter']}"},
        timeout=10,
    ).json()
    assert answer["role"] == "Reporter" and answer["access"]["read"] == {"allowed": True, "reason": None}
    assert answer["access"]["write"]["reason"] == "Developer role required to write to ml/vision"


def test_a_redirect_to_another_origin_gets_no_credential(registry: RegistryServer) -> None:
    """The URL names a host that redirects everything to the registry (another port, another origin):
    doctor follows without the token, so the registry sees an anonymous caller, and doctor says why."""

    def redirect(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        location = registry.url + Request(environ).full_path
        return Response(status=302, headers={"Location": location})(environ, start_response)

    front = serve_in_thread(redirect)
    try:
        url = f"http://127.0.0.1:{front.server_port}/ml/vision/-/data/dvc"
        code, said = doctor(url, "--token", TOKENS["developer"])
    finally:
        front.shutdown()
        front.server_close()
    assert code == 1, said
    assert f"redirected to another origin, {registry.url}: the credential was not sent there" in said
    assert "credential  anonymous" in said and "read  no:" in said


def doctor_json(url: str, *args: str, token: str) -> tuple[int, dict[str, Any]]:
    code, said = doctor(url, "--json", "--token", token, *args)
    return code, json.loads(said)  # one JSON document, nothing else on stdout or stderr


def test_require_write_fails_for_a_reporter_and_json_says_everything(registry: RegistryServer) -> None:
    url = f"{registry.url}/ml/vision/-/data/dvc"
    code, said = doctor(url, "--token", TOKENS["reporter"], "--require", "write")
    assert code == 1, said
    assert "credential  access token of @rita (user 4)" in said
    assert "require  write: not allowed" in said
    assert doctor(url, "--token", TOKENS["reporter"], "--require", "read")[0] == 0
    code, report = doctor_json(url, "--require", "write", token=TOKENS["reporter"])
    assert code == 1 and report["exit_status"] == 1 and report["required"] == "write"
    assert set(report) == {
        "url", "required", "exit_status", "registry", "credential", "project", "role", "access",
        "clock_skew_seconds", "remotes", "not_checked", "findings",
    }  # fmt: skip
    assert report["credential"]["username"] == "rita" and report["credential"]["verified"] is True
    assert report["project"] == {"id": 101, "path": "ml/vision"} and report["role"] == "Reporter"
    assert report["access"]["write"] == {
        "allowed": False,
        "reason": "Developer role required to write to ml/vision",
    }
    assert report["remotes"]["http"]["ok"] and report["remotes"]["webdav"]["ok"]
    assert report["not_checked"] == [] and {"topic": "read", "text": "yes"} in report["findings"]


def test_a_mistyped_project_still_names_the_user(registry: RegistryServer) -> None:
    code, report = doctor_json(f"{registry.url}/ml/visoin/-/data/dvc", token=TOKENS["developer"])
    assert code == 1 and report["project"] is None
    assert report["credential"]["username"] == "dev"
    assert report["access"]["read"]["reason"] == "Project ml/visoin not found"
    assert [n["what"] for n in report["not_checked"]] == ["http remote", "webdav remote", "s3 remote"]


def test_a_job_token_is_valid_until_its_job_ends(registry: RegistryServer) -> None:
    code, report = doctor_json(f"{registry.url}/ml/vision/-/data/dvc", "--user", "gitlab-ci-token", token=JOB)
    assert code == 0, report
    assert (
        report["credential"]["kind"] == "CI job token"
        and report["credential"]["valid_until"] == "the job's end"
    )
    assert report["credential"]["username"] == "dev"


def test_a_deploy_token_without_a_service_token_is_not_checked(
    tmp_path_factory: pytest.TempPathFactory, gitlab: Simulator
) -> None:
    bare = start_registry(tmp_path_factory.mktemp("bare"), gitlab.url)  # no REGISTRY_GITLAB_SERVICE_TOKEN
    try:
        url = f"{bare.url}/ml/vision/-/data/dvc"
        args = ("--user", "gitlab+deploy-token-1", "--token", "gldt-vision-read-write-0001")
        code, said = doctor(url, *args)
        json_code, report = doctor(url, *args, "--json")
    finally:
        bare.stop()
    assert code == 1, said
    assert (
        "credential  not checked: the registry has no service token, so deploy tokens cannot be verified"
        in said
    )
    assert "accepted" not in said and "read  not checked" in said
    found = json.loads(report)
    assert json_code == 1 and found["credential"]["verified"] is False
    assert found["not_checked"][0] == {
        "what": "credential",
        "why": "the registry has no service token, so deploy tokens cannot be verified",
    }


# --- the S3 door (DVC's s3 remote) ------------------------------------------------------------------


def dvc_repo_with_s3_remote(tmp_path: Any, registry: RegistryServer, bucket: str, token: str) -> Any:
    """A DVC repository whose default remote is s3://<bucket> at the project's S3 door, the token in
    .dvc/config.local, written as `dvc remote add/modify` writes them."""
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        f"[core]\n    remote = registry\n['remote \"registry\"']\n    url = s3://{bucket}\n"
        f"    endpointurl = {registry.url}/ml/vision/-/s3\n"
    )
    (tmp_path / ".dvc" / "config.local").write_text(
        f"['remote \"registry\"']\n    access_key_id = {token}\n    secret_access_key = {token}\n"
    )
    return tmp_path


def doctor_in(repo: Any, *args: str) -> tuple[int, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GITLAB_TOKEN", "DATA_REGISTRY_TOKEN", "CI_JOB_TOKEN")
    }
    done = subprocess.run(
        [BIN / "data-registry", "doctor", *args],
        cwd=repo,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_doctor_in_a_repository_checks_its_s3_remote_with_a_signed_request(
    registry: RegistryServer, tmp_path: Any
) -> None:
    """No URL: the default remote from .dvc/config (an s3 remote at the registry's S3 door) and the
    credential from .dvc/config.local; the door answers a SigV4-signed ListObjectsV2, also for a bucket
    (a folder) nothing has been written in yet: DVC's first push needs nothing made before it."""
    folder = requests.request(
        "PROPFIND",
        f"{registry.url}/ml/vision/-/data/doctor-s3/",
        headers={"Authorization": f"Bearer {TOKENS['developer']}", "Depth": "0"},
        timeout=10,
    )
    assert folder.status_code == 404  # a fresh bucket: no folder yet
    repo = dvc_repo_with_s3_remote(tmp_path, registry, "doctor-s3", TOKENS["developer"])
    code, said = doctor_in(repo)
    assert code == 0, said
    assert f"dvc remote  {registry.url}/ml/vision/-/s3/doctor-s3" in said
    assert "credential  access token of @dev (user 3)" in said and "write  yes" in said
    assert (
        f"s3 remote  ok (ListObjectsV2 of bucket doctor-s3 at {registry.url}/ml/vision/-/s3 answers" in said
    )
    code, report = doctor_json(f"{registry.url}/ml/vision/-/s3/doctor-s3", token=TOKENS["reporter"])
    assert (
        code == 0
        and report["remotes"]["s3"]["ok"] is True
        and set(report["remotes"]) == {"http", "webdav", "s3"}
    )
    assert report["access"]["write"]["allowed"] is False  # read and write as for http and webdav


def test_doctor_says_an_object_cannot_be_the_bucket(registry: RegistryServer, tmp_path: Any) -> None:
    """The one NoSuchBucket a readable project's door still answers: an object where the bucket's folder
    should be."""
    put = requests.put(
        f"{registry.url}/ml/vision/-/data/an-object",
        data=b"x",
        headers={"Authorization": f"Bearer {TOKENS['developer']}"},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    repo = dvc_repo_with_s3_remote(tmp_path, registry, "an-object", TOKENS["developer"])
    code, said = doctor_in(repo)
    assert code == 1, said
    assert (
        "s3 remote  an-object is an object at the top of the project's data, not a folder, so it cannot be "
        "the bucket: keep DVC's data in another folder, or move that object"
    ) in said
    assert "MKCOL" not in said


def test_a_proxy_that_changes_the_host_breaks_the_signature_and_doctor_says_so(
    registry: RegistryServer, tmp_path: Any
) -> None:
    """A front that forwards to the registry under the registry's own Host (a misconfigured proxy): every
    other check passes, but the signature (made for the front's host) cannot hold."""

    def forward(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        incoming = Request(environ)
        headers = {k: v for k, v in incoming.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(
            incoming.method,
            registry.url + incoming.full_path,
            headers=headers,
            data=incoming.get_data(),
            allow_redirects=False,
            timeout=30,
        )
        kept = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("transfer-encoding", "content-encoding", "connection", "content-length")
        }
        return Response(answer.content, status=answer.status_code, headers=kept)(environ, start_response)

    front = serve_in_thread(forward)
    try:
        code, said = doctor(
            f"http://127.0.0.1:{front.server_port}/ml/vision/-/s3/dvc", "--token", TOKENS["developer"]
        )
    finally:
        front.shutdown()
        front.server_close()
    assert code == 1, said
    assert "read  yes" in said and "http remote  ok" in said
    assert (
        "s3 remote  the signature does not match: something between here and the registry changes the Host"
        in said
    )
