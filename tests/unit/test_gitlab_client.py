"""The python-gitlab gateway against GitLab's documented payloads (mocked with responses)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import requests
import responses

from app.errors import GitLabUnavailable, InvalidCredential, ProjectNotFound
from app.gitlab.client import PythonGitLabGateway
from app.model.identity import AccessLevel, Credential, CredentialKind
from app.model.projects import ProjectRef, Visibility

API = "http://gitlab.test/api/v4"
TOKEN = Credential(CredentialKind.ACCESS_TOKEN, "glpat-xxxxxxxxxxxxxxxxxxxx")

# doc/api/personal_access_tokens.md, "Self-inform"
TOKEN_SELF = {
    "id": 42,
    "name": "Test Token",
    "revoked": False,
    "created_at": "2020-07-23T14:31:47.729Z",
    "description": "Test Token description",
    "scopes": ["api"],
    "user_id": 3,
    "last_used_at": "2021-10-06T17:58:37.550Z",
    "active": True,
    "expires_at": "2030-01-31",
}
# doc/api/projects.md, "Get a single project" (abridged to the fields the registry reads and a few more)
PROJECT = {
    "id": 3,
    "description": "Lorem ipsum",
    "default_branch": "main",
    "visibility": "private",
    "ssh_url_to_repo": "git@example.com:diaspora/diaspora-project-site.git",
    "http_url_to_repo": "http://example.com/diaspora/diaspora-project-site.git",
    "web_url": "http://example.com/diaspora/diaspora-project-site",
    "name": "Diaspora Project Site",
    "name_with_namespace": "Diaspora / Diaspora Project Site",
    "path": "diaspora-project-site",
    "path_with_namespace": "diaspora/diaspora-project-site",
    "archived": False,
    "created_at": "2013-09-30T13:46:02Z",
    "namespace": {
        "id": 3,
        "name": "Diaspora",
        "path": "diaspora",
        "kind": "group",
        "full_path": "diaspora",
    },
    "permissions": {
        "project_access": {"access_level": 10, "notification_level": 3},
        "group_access": {"access_level": 50, "notification_level": 3},
    },
}
# doc/api/members.md, "Get a member of a group or project, including inherited and invited members"
MEMBER_ALL = {
    "id": 3,
    "username": "raymond_smith",
    "name": "Raymond Smith",
    "state": "active",
    "avatar_url": "https://www.gravatar.com/avatar/c2525a7f58ae3776070e44c106c48e15?s=80&d=identicon",
    "web_url": "http://192.168.1.8:3000/root",
    "access_level": 30,
    "created_at": "2012-10-22T14:13:35Z",
    "expires_at": None,
    "group_saml_identity": None,
    "membership_state": "active",
}
UNAUTHORIZED = {"message": "401 Unauthorized"}


@pytest.fixture
def gateway() -> PythonGitLabGateway:
    return PythonGitLabGateway(url="http://gitlab.test", timeout=5)


@pytest.fixture
def resp_token_self() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/personal_access_tokens/self", json=TOKEN_SELF, status=200)
        yield rsps


def test_token_self_sends_the_token_and_reads_the_documented_fields(
    gateway: PythonGitLabGateway, resp_token_self: responses.RequestsMock
) -> None:
    info = gateway.access_token_info(TOKEN)
    assert (info.user_id, info.scopes, info.active, info.revoked) == (3, {"api"}, True, False)
    assert info.expires_at == date(2030, 1, 31)
    assert resp_token_self.calls[0].request.headers["PRIVATE-TOKEN"] == TOKEN.secret


@responses.activate
def test_unknown_token_is_invalid(gateway: PythonGitLabGateway) -> None:
    responses.add(responses.GET, f"{API}/personal_access_tokens/self", json=UNAUTHORIZED, status=401)
    with pytest.raises(InvalidCredential):
        gateway.access_token_info(TOKEN)


@responses.activate
def test_project_by_path_is_url_encoded(gateway: PythonGitLabGateway) -> None:
    responses.add(responses.GET, f"{API}/projects/diaspora%2Fdiaspora-project-site", json=PROJECT)
    project = gateway.project(TOKEN, ProjectRef(path="diaspora/diaspora-project-site"))
    assert (project.id, project.path, project.visibility, project.archived) == (
        3,
        "diaspora/diaspora-project-site",
        Visibility.PRIVATE,
        False,
    )


@responses.activate
def test_invisible_project_is_not_found(gateway: PythonGitLabGateway) -> None:
    responses.add(responses.GET, f"{API}/projects/9", json={"message": "404 Project Not Found"}, status=404)
    with pytest.raises(ProjectNotFound):
        gateway.project(None, ProjectRef(id=9))


@responses.activate
def test_effective_membership(gateway: PythonGitLabGateway) -> None:
    responses.add(responses.GET, f"{API}/projects/3/members/all/3", json=MEMBER_ALL)
    responses.add(
        responses.GET,
        f"{API}/projects/3/members/all/4",
        json={"message": "404 Not found"},
        status=404,
    )
    assert gateway.member_access_level(TOKEN, 3, 3) is AccessLevel.DEVELOPER
    assert gateway.member_access_level(TOKEN, 3, 4) is AccessLevel.NO_ACCESS


@pytest.mark.parametrize("status", [429, 500, 502, 503])
@responses.activate
def test_gitlab_trouble_is_unavailable_never_denied(gateway: PythonGitLabGateway, status: int) -> None:
    responses.add(
        responses.GET,
        f"{API}/projects/3",
        json={"message": "busy"},
        status=status,
        headers={"Retry-After": "17"},
    )
    with pytest.raises(GitLabUnavailable) as info:
        gateway.project(TOKEN, ProjectRef(id=3))
    assert info.value.headers["Retry-After"] == "17"
    assert len(responses.calls) == 1  # never retried inside a request


@responses.activate
def test_gitlab_unreachable_is_unavailable(gateway: PythonGitLabGateway) -> None:
    responses.add(responses.GET, f"{API}/projects/3", body=requests.ConnectionError("refused"))
    with pytest.raises(GitLabUnavailable, match="unreachable"):
        gateway.project(TOKEN, ProjectRef(id=3))


# doc/api/users.md, "Get the current user" as an administrator (abridged; regular users get no is_admin)
CURRENT_ADMIN = {
    "id": 1,
    "username": "john_smith",
    "email": "john@example.com",
    "name": "John Smith",
    "state": "active",
    "locked": False,
    "avatar_url": "http://localhost:3000/uploads/user/avatar/1/index.jpg",
    "web_url": "http://localhost:3000/john_smith",
    "created_at": "2012-05-23T08:00:58Z",
    "is_admin": True,
    "bot": False,
}


@responses.activate
def test_current_user(gateway: PythonGitLabGateway) -> None:
    responses.get(f"{API}/user", json=CURRENT_ADMIN)
    user = gateway.current_user(TOKEN)
    assert (user.id, user.username, user.is_admin) == (1, "john_smith", True)
    assert responses.calls[0].request.headers["PRIVATE-TOKEN"] == TOKEN.secret
    regular = {k: v for k, v in CURRENT_ADMIN.items() if k != "is_admin"}
    responses.get(f"{API}/user", json=regular)
    assert gateway.current_user(TOKEN).is_admin is False
    responses.get(f"{API}/user", status=401, json={"message": "401 Unauthorized"})
    with pytest.raises(InvalidCredential):
        gateway.current_user(TOKEN)


def job_answer(web_url: str) -> dict[str, object]:
    """GET /job as GitLab documents it (doc/api/jobs.md, "Retrieve a job by job token"), trimmed."""
    return {
        "id": 7,
        "status": "running",
        "stage": "train",
        "name": "train",
        "ref": "main",
        "user": {"id": 3, "username": "maya"},
        "pipeline": {"id": 70, "project_id": 42, "ref": "main", "status": "running"},
        "web_url": web_url,
    }


@pytest.mark.parametrize(
    ("instance", "web_url", "path"),
    [
        ("http://gitlab.test", "http://gitlab.test/ml/vision/-/jobs/7", "ml/vision"),
        ("http://gitlab.test/gitlab", "http://gitlab.test/gitlab/ml/deep/vision/-/jobs/7", "ml/deep/vision"),
        ("http://gitlab.test", "http://gitlab.test/ml/vision/-/pipelines/7", None),
    ],
)
def test_a_jobs_project_path_comes_from_its_web_url(instance: str, web_url: str, path: str | None) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{instance}/api/v4/job", json=job_answer(web_url))
        job = PythonGitLabGateway(url=instance, timeout=5).job(
            Credential(CredentialKind.JOB_TOKEN, "glcbt-x")
        )
    assert (job.project_id, job.project_path) == (42, path)
