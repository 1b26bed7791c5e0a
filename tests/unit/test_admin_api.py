"""Admin endpoints of the JSON API: usage across projects and per-project quotas, for GitLab
administrators (GET /user says is_admin) and the users named in REGISTRY_ADMIN_USERS only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import bearer

ADMIN = "/api/v1/admin/projects"


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    client = make_app(default_quota="1MiB").test_client()
    client.put("/ml/vision/-/data/a.bin", data=b"x" * 3000, headers=bearer("developer"))
    client.put("/ml/pipeline/-/data/b.bin", data=b"y" * 1000, headers=bearer("developer"))
    client.put("/ml/pipeline/-/data/c.bin", data=b"z" * 5000, headers=bearer("developer"))
    return client


def test_usage_across_projects_by_bytes_used(client: FlaskClient) -> None:
    answer = client.get(ADMIN, headers=bearer("admin"))
    assert answer.status_code == 200, answer.json
    rows = [(p["id"], p["path"], p["used_bytes"], p["object_count"]) for p in answer.json["projects"]]
    assert rows == [(106, "ml/pipeline", 6000, 2), (101, "ml/vision", 3000, 1)]
    assert all(p["quota_bytes"] == 2**20 and p["quota_is_default"] for p in answer.json["projects"])
    assert len(client.get(ADMIN, query_string={"limit": 1}, headers=bearer("admin")).json["projects"]) == 1


def test_set_quota_takes_effect_on_the_data_plane(client: FlaskClient) -> None:
    url = f"{ADMIN}/101/quota"
    assert client.get(url, headers=bearer("admin")).json["quota_bytes"] == 2**20
    small = client.put(url, json={"quota": "4000"}, headers=bearer("admin"))
    assert (
        small.status_code == 200 and small.json["quota_bytes"] == 4000 and not small.json["quota_is_default"]
    )
    refused = client.put("/ml/vision/-/data/more.bin", data=b"m" * 1001, headers=bearer("developer"))
    assert refused.status_code == 413 and "Quota exceeded for ml/vision" in refused.status
    assert client.put(url, json={"quota": 0}, headers=bearer("admin")).json["quota_bytes"] == 0  # unlimited
    assert (
        client.put("/ml/vision/-/data/more.bin", data=b"m" * 1001, headers=bearer("developer")).status_code
        == 201
    )
    back = client.put(url, json={"quota": None}, headers=bearer("admin")).json
    assert back["quota_bytes"] == 2**20 and back["quota_is_default"]
    unknown = client.put(f"{ADMIN}/999/quota", json={"quota": "1GiB"}, headers=bearer("admin")).json
    assert unknown["quota_bytes"] == 2**30 and unknown["used_bytes"] == 0


@pytest.mark.parametrize("quota", ["lots", -1, True, 1.5, [], "1e400GiB"])
def test_bad_quota_values(client: FlaskClient, quota: object) -> None:
    answer = client.put(f"{ADMIN}/101/quota", json={"quota": quota}, headers=bearer("admin"))
    assert answer.status_code == 400 and answer.json["error"]["message"].startswith("Invalid request: quota")


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401), ("maintainer", 403), ("owner", 403), ("expired", 401), ("revoked", 401)],
)
def test_only_administrators(client: FlaskClient, role: str | None, status: int) -> None:
    headers = bearer(role) if role else {}
    assert client.get(ADMIN, headers=headers).status_code == status
    assert client.put(f"{ADMIN}/101/quota", json={"quota": 0}, headers=headers).status_code == status
    assert client.get(f"{ADMIN}/101/quota", headers=bearer("admin")).json["quota_is_default"]


def test_ci_and_deploy_tokens_never_administer(client: FlaskClient) -> None:
    for headers in ({"JOB-TOKEN": "glcbt-anything"}, {"DEPLOY-TOKEN": "gldt-vision-read-write-0001"}):
        assert client.get(ADMIN, headers=headers).status_code == 403


def test_read_api_scope_reads_but_does_not_change(client: FlaskClient) -> None:
    assert client.get(ADMIN, headers=bearer("admin_read_api")).status_code == 200
    refused = client.put(f"{ADMIN}/101/quota", json={"quota": 0}, headers=bearer("admin_read_api"))
    assert refused.status_code == 403 and "scope api" in refused.json["error"]["message"]


def test_configured_admin_users(make_app: Callable[..., Flask]) -> None:
    client = make_app(admin_users="olive, somebody").test_client()
    assert client.get(ADMIN, headers=bearer("outsider")).status_code == 200  # olive
    assert client.get(ADMIN, headers=bearer("developer")).status_code == 403
