"""Each credential kind, the way it arrives, through the Flask app with the GitLab simulator as GitLab."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.harness import Simulator
from tests.conftest import TOKENS

SERVICE = "glpat-service-admin-token-1"
AUDIENCE = "https://registry.test"
VISION = "/ml/vision/-/data/creds"


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app(gitlab_service_token=SERVICE, id_token_audience=AUDIENCE).test_client()


@pytest.fixture
def bare_client(make_app: Callable[..., Flask]) -> FlaskClient:
    """No service token, no ID-token audience: the features that need them are off."""
    return make_app().test_client()


def put(
    client: FlaskClient, headers: dict[str, str], path: str = f"{VISION}/a.txt", body: bytes = b"a"
) -> str:
    return client.put(path, data=body, headers=headers).status


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (bearer("oauth-developer-access-token-0001"), "201 CREATED"),
        (bearer("glcbt-vision-running-job-5001"), "201 CREATED"),
        ({"JOB-TOKEN": "glcbt-vision-running-job-5001"}, "201 CREATED"),
        ({"DEPLOY-TOKEN": "gldt-vision-read-write-0001"}, "201 CREATED"),
        (basic("gitlab+deploy-token-1", "gldt-vision-read-write-0001"), "201 CREATED"),
        (basic("my-custom-deploy-user", "gldt-vision-read-write-0001"), "201 CREATED"),
        (basic("anyone", TOKENS["developer"]), "201 CREATED"),
        ({"PRIVATE-TOKEN": TOKENS["developer"]}, "201 CREATED"),
        (bearer("unknown-token"), "401 GitLab token is invalid, expired or revoked"),
        (
            {"JOB-TOKEN": "glcbt-vision-finished-job-5002"},
            "401 CI job token is invalid, or its job is no longer running",
        ),
        ({"DEPLOY-TOKEN": "gldt-vision-revoked-000005"}, "401 Deploy token has been revoked"),
        (
            {"DEPLOY-TOKEN": "gldt-other-read-write-0006"},
            "403 Project ml/vision does not exist or you cannot write to it",  # as if it did not exist
        ),
        (
            {"DEPLOY-TOKEN": "gldt-ml-group-read-0000003"},
            "403 Token scope write_package_registry required to write to ml/vision",
        ),
        (bearer(TOKENS["read_api"]), "403 Token scope api required to write to ml/vision"),
        (
            basic("gitlab-ci-token", "glcbt-vision-reporter-job-5004"),
            "403 Developer role required to write to ml/vision",
        ),
    ],
)
def test_credential_kinds(client: FlaskClient, headers: dict[str, str], status: str) -> None:
    assert put(client, headers) == status


def test_group_deploy_token_reads_every_project_of_the_group(client: FlaskClient) -> None:
    put(client, {"PRIVATE-TOKEN": TOKENS["developer"]}, "/ml/inside/-/data/g.txt")
    assert (
        client.head(
            "/ml/inside/-/data/g.txt", headers={"DEPLOY-TOKEN": "gldt-ml-group-read-0000003"}
        ).status_code
        == 200
    )
    assert client.head(
        "/other/secret/-/data/g.txt", headers={"DEPLOY-TOKEN": "gldt-ml-group-read-0000003"}
    ).status == ("404 Project other/secret not found")


def test_inherited_and_shared_group_membership(client: FlaskClient) -> None:
    # owen owns the group ml; paula's group partners is invited to ml/vision as Reporter
    assert put(client, bearer(TOKENS["owner"])) == "201 CREATED"
    partner = bearer(TOKENS["partner"])
    assert client.head(f"{VISION}/a.txt", headers=partner).status_code == 200
    assert put(client, partner, body=b"b") == "403 Developer role required to write to ml/vision"
    # sid is a Developer of the subgroup ml/research: inherited by ml/research/models
    assert put(client, bearer(TOKENS["subgroup"]), "/ml/research/models/-/data/m.bin") == "201 CREATED"


def test_job_tokens_reach_other_projects_only_through_the_allowlist(client: FlaskClient) -> None:
    pipeline_job = basic("gitlab-ci-token", "glcbt-pipeline-running-job-5003")
    assert put(client, pipeline_job) == "201 CREATED"  # ml/vision allowlists ml/pipeline
    # ml/pipeline is not on ml/old's allowlist (and ml/old is private)
    assert client.get("/ml/old/-/data/x", headers=pipeline_job).status == "404 Project ml/old not found"
    # public projects let any job read, never write
    assert client.get("/ml/open-data/-/data/x", headers=pipeline_job).status_code == 404  # allowed; no object
    assert put(client, pipeline_job, "/ml/open-data/-/data/x") == (
        "403 The job-token allowlist of ml/open-data does not let this job write it"
    )


def test_ci_id_tokens(client: FlaskClient, simulator: Simulator) -> None:
    token = simulator.world.mint_id_token("glcbt-vision-running-job-5001", AUDIENCE)
    assert put(client, bearer(token)) == "201 CREATED"
    assert client.get("/ml/pipeline/-/data/x", headers=bearer(token)).status == (
        "404 Project ml/pipeline not found"  # private: as if it did not exist
    )
    assert client.get("/ml/open-data/-/data/x", headers=bearer(token)).status == (
        "403 A CI ID token only reaches its own project, not ml/open-data"  # public: no secret to keep
    )
    expired = simulator.world.mint_id_token("glcbt-vision-running-job-5001", AUDIENCE, lifetime=-120)
    assert put(client, bearer(expired)) == "401 CI ID token has expired"
    wrong_issuer = simulator.world.mint_id_token(
        "glcbt-vision-running-job-5001", AUDIENCE, issuer="https://evil.example"
    )
    assert put(client, bearer(wrong_issuer)) == "401 CI ID token is invalid"
    from cryptography.hazmat.primitives.asymmetric import rsa

    forged = simulator.world.mint_id_token(
        "glcbt-vision-running-job-5001",
        AUDIENCE,
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    assert put(client, bearer(forged)) == "401 CI ID token is invalid"


def test_id_tokens_may_be_limited_to_protected_refs(
    make_app: Callable[..., Flask], simulator: Simulator
) -> None:
    client = make_app(
        gitlab_service_token=SERVICE, id_token_audience=AUDIENCE, id_token_protected_writes=True
    ).test_client()
    feature_branch = simulator.world.mint_id_token("glcbt-vision-reporter-job-5004", AUDIENCE)
    assert (
        client.get(f"{VISION}/nothing", headers=bearer(feature_branch)).status_code == 404
    )  # reads are fine
    assert (
        put(client, bearer(feature_branch))
        == "403 Only jobs on protected branches or tags may write to ml/vision"
    )
    main = simulator.world.mint_id_token("glcbt-vision-running-job-5001", AUDIENCE)
    assert put(client, bearer(main)) == "201 CREATED"


def test_without_a_service_token(bare_client: FlaskClient, simulator: Simulator) -> None:
    assert put(bare_client, {"DEPLOY-TOKEN": "gldt-vision-read-write-0001"}) == (
        "403 Deploy tokens cannot be checked: the registry has no service token"
        " (REGISTRY_GITLAB_SERVICE_TOKEN)"
    )
    job = {"JOB-TOKEN": "glcbt-vision-running-job-5001"}
    assert put(bare_client, job, "/-/projects/101/data/by-id.txt") == "201 CREATED"  # own project, by id
    assert put(bare_client, job) == "201 CREATED"  # by path: GitLab's /job names the job's project
    assert put(bare_client, job, "/ML/Vision/-/data/case.txt") == "201 CREATED"  # paths ignore case
    assert put(bare_client, job, "/ml/pipeline/-/data/x.txt") == (
        "403 CI tokens reach other projects than their own (ml/vision), such as ml/pipeline, only when the"
        " registry has a service token (REGISTRY_GITLAB_SERVICE_TOKEN)"
    )
    token = simulator.world.mint_id_token("glcbt-vision-running-job-5001", AUDIENCE)
    assert (
        put(bare_client, bearer(token)) == "401 CI ID tokens are not accepted: set REGISTRY_ID_TOKEN_AUDIENCE"
    )


def test_ready_says_which_features_are_off(bare_client: FlaskClient, client: FlaskClient) -> None:
    off = bare_client.get("/-/ready").get_json()["features_off"]
    assert set(off) == {
        "deploy tokens",
        "CI tokens on other projects",
        "reconciler (data of projects GitLab deleted while no hook reached us)",
        "CI ID tokens",
        "GitLab hooks (/-/hooks/gitlab)",
        "sign-in with GitLab (browser UI)",
    }
    assert client.get("/-/ready").get_json()["features_off"] == {
        "GitLab hooks (/-/hooks/gitlab)": "set REGISTRY_WEBHOOK_SECRET",
        "sign-in with GitLab (browser UI)": "set REGISTRY_OAUTH_CLIENT_ID and REGISTRY_OAUTH_CLIENT_SECRET",
    }


def test_job_token_answers_are_cached_briefly(make_app: Callable[..., Flask], simulator: Simulator) -> None:
    """Reused while the job runs (no GitLab call per request), and refused soon after the job ends."""
    client = make_app(gitlab_service_token=SERVICE, job_token_cache_ttl=1).test_client()
    job = {"JOB-TOKEN": "glcbt-vision-running-job-5001"}
    put(client, job)
    calls = simulator.world.total_calls()
    for i in range(20):
        client.head(f"{VISION}/{i}", headers=job)
    assert simulator.world.total_calls() == calls  # served from the cache
    simulator.world.jobs["glcbt-vision-running-job-5001"]["status"] = "success"
    time.sleep(1.2)
    assert put(client, job) == "401 CI job token is invalid, or its job is no longer running"


@pytest.mark.parametrize(
    "headers",
    [
        {"DEPLOY-TOKEN": "gldt-other-read-write-0006"},
        basic("gitlab-ci-token", "glcbt-pipeline-running-job-5003"),
    ],
    ids=["deploy token", "job token"],
)
@pytest.mark.parametrize("method", ["HEAD", "GET", "PUT", "DELETE", "PROPFIND"])
def test_a_private_project_out_of_reach_looks_like_none(
    client: FlaskClient, headers: dict[str, str], method: str
) -> None:
    """Status line and body for a private project the credential may not read are those of a project
    that does not exist, whatever the method."""
    hidden = client.open("/ml/old/-/data/x", method=method, headers=headers)
    missing = client.open("/ml/no-such-project/-/data/x", method=method, headers=headers)
    assert hidden.status_code == missing.status_code
    assert hidden.status.replace("ml/old", "P") == missing.status.replace("ml/no-such-project", "P")
    assert hidden.data.replace(b"ml/old", b"P") == missing.data.replace(b"ml/no-such-project", b"P")


def test_an_id_token_on_a_private_project_looks_like_none(client: FlaskClient, simulator: Simulator) -> None:
    token = bearer(simulator.world.mint_id_token("glcbt-vision-running-job-5001", AUDIENCE))
    for method, status in (("GET", 404), ("PUT", 403)):
        hidden = client.open("/ml/old/-/data/x", method=method, headers=token)
        missing = client.open("/ml/no-such-project/-/data/x", method=method, headers=token)
        assert hidden.status_code == status
        assert hidden.data.replace(b"ml/old", b"P") == missing.data.replace(b"ml/no-such-project", b"P")


@pytest.mark.parametrize(
    ("token", "lookups"),
    [("glpat-made-up-0001", 1), ("gloas-made-up-0001", 1), ("glcbt-made-up-0001", 1), ("made-up-0001", 3)],
)
def test_a_prefix_decides_the_one_kind_a_bearer_token_is_tried_as(
    client: FlaskClient, simulator: Simulator, token: str, lookups: int
) -> None:
    before = simulator.world.total_calls()
    assert client.head("/ml/vision/-/data/x", headers=bearer(token)).status_code == 401
    assert simulator.world.total_calls() - before == lookups, dict(simulator.world.calls)
