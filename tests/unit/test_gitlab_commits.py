"""Commits and commit statuses: the python-gitlab gateway against the simulator's documented shapes, and the
simulator's GitLab rules (first-parent history, path filter, the status state rule)."""

from __future__ import annotations

import pytest
import requests

from app.errors import NotFound, PermissionDenied
from app.gitlab.client import PythonGitLabGateway
from app.model.identity import Credential, CredentialKind
from scripts.harness import Simulator
from tests.conftest import TOKENS

VISION = 101  # ml/vision in seed.json


def _token(role: str) -> Credential:
    return Credential(CredentialKind.ACCESS_TOKEN, TOKENS[role])


@pytest.fixture
def gateway(simulator: Simulator) -> PythonGitLabGateway:
    return PythonGitLabGateway(url=simulator.url, timeout=5)


def _commit(simulator: Simulator, files: dict[str, str], message: str, ref: str = "main") -> str:
    answer = requests.post(
        f"{simulator.url}/-/sim/repository",
        json={"project": "ml/vision", "ref": ref, "files": files, "message": message},
        timeout=5,
    )
    answer.raise_for_status()
    return str(answer.json()["sha"])


def test_history_is_first_parent_newest_first_and_filters_by_the_changed_path(
    simulator: Simulator, gateway: PythonGitLabGateway
) -> None:
    first = _commit(simulator, {"data.dvc": "md5: a", "README.md": "hi"}, "Add data")
    second = _commit(simulator, {"data.dvc": "md5: a", "README.md": "hello"}, "Edit README")
    third = _commit(simulator, {"data.dvc": "md5: b", "README.md": "hello"}, "Update data\n\nmore")
    fourth = _commit(simulator, {"README.md": "hello"}, "Remove data")

    every = gateway.commits(_token("developer"), VISION, ref="main")
    assert [c.id for c in every] == [fourth, third, second, first]
    assert every[1].title == "Update data" and every[1].message == "Update data\n\nmore"
    assert every[1].parent == second and every[-1].parent is None
    assert every[0].authored_date.tzinfo is not None and every[0].short_id == fourth[:8]

    changed = gateway.commits(_token("developer"), VISION, ref="main", path="data.dvc")
    assert [c.id for c in changed] == [fourth, third, first]  # deleted, changed, added; not the README edit
    assert [c.id for c in gateway.commits(_token("developer"), VISION, ref="main", limit=2)] == [
        fourth,
        third,
    ]


def test_a_tag_and_a_sha_are_refs_everywhere(simulator: Simulator, gateway: PythonGitLabGateway) -> None:
    first = _commit(simulator, {"data.dvc": "md5: a"}, "v1 data")
    _commit(simulator, {"data.dvc": "md5: b"}, "v2 data")
    requests.post(
        f"{simulator.url}/-/sim/tag", json={"project": "ml/vision", "tag": "v1", "ref": first}, timeout=5
    ).raise_for_status()
    reader = _token("developer")
    assert gateway.raw_file(reader, VISION, "data.dvc", "v1") == b"md5: a"
    assert gateway.raw_file(reader, VISION, "data.dvc", first) == b"md5: a"
    assert gateway.raw_file(reader, VISION, "data.dvc", "main") == b"md5: b"
    assert gateway.repository_files(reader, VISION, first) == ["data.dvc"]
    assert "v1" in gateway.repository_refs(reader, VISION).tags
    found = gateway.commit(reader, VISION, "v1")
    assert found is not None and found.id == first
    assert gateway.commit(reader, VISION, "f" * 40) is None
    with pytest.raises(NotFound):
        gateway.commits(reader, VISION, ref="no-such-branch")


def test_commit_status_follows_gitlabs_state_rule(simulator: Simulator, gateway: PythonGitLabGateway) -> None:
    sha = _commit(simulator, {"data.dvc": "md5: a"}, "Add data")
    service = _token("admin")
    post = gateway.set_commit_status

    post(service, VISION, sha, state="pending", name="data-registry", description="checking", target_url=None)
    # pending over pending is GitLab's 400 "Cannot transition status": the state is held, a no-op here
    post(service, VISION, sha, state="pending", name="data-registry", description="again", target_url=None)
    assert len(simulator.world.statuses[(VISION, sha)]) == 1
    post(
        service,
        VISION,
        sha,
        state="failed",
        name="data-registry",
        description="x" * 300,
        target_url="http://r/",
    )
    post(service, VISION, sha, state="success", name="data-registry", description="all here", target_url=None)

    world = simulator.world
    assert [p["state"] for p in world.status_posts] == ["pending", "pending", "failed", "success"]
    every = world.statuses[(VISION, sha)]
    assert [s["status"] for s in every] == ["failed", "success"]  # the pending one went on to failed
    assert len(every[0]["description"]) == 255 and every[0]["target_url"] == "http://r/"
    listed = requests.get(
        f"{simulator.url}/api/v4/projects/{VISION}/repository/commits/{sha}/statuses",
        headers={"PRIVATE-TOKEN": TOKENS["developer"]},
        timeout=5,
    ).json()
    assert [s["status"] for s in listed] == ["success"]


@pytest.mark.parametrize("role", ["reporter", "read_api"])
def test_who_may_not_set_a_status_is_refused(
    simulator: Simulator, gateway: PythonGitLabGateway, role: str
) -> None:
    sha = _commit(simulator, {"data.dvc": "md5: a"}, "Add data")
    with pytest.raises(PermissionDenied):
        gateway.set_commit_status(
            _token(role), VISION, sha, state="success", name="data-registry", description="", target_url=None
        )
    assert simulator.world.statuses.get((VISION, sha)) is None


def test_a_status_for_an_unknown_commit_is_not_found(
    simulator: Simulator, gateway: PythonGitLabGateway
) -> None:
    with pytest.raises(NotFound):
        gateway.set_commit_status(
            _token("admin"),
            VISION,
            "a" * 40,
            state="success",
            name="data-registry",
            description="",
            target_url=None,
        )
