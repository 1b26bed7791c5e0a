"""Data checks (DESIGN 3.12): the push and merge request payloads GitLab documents, one request per project
and commit, the job against the GitLab simulator and the real index (statuses, descriptions, posted only
when they change), the debounced re-check after uploads, and a GitLab outage retried later."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.components import Components
from app.data_checks import DataChecker, Finding, describe
from app.db import build_engine
from app.db.data_checks import DataCheckQueue, Posted
from app.errors import BadRequest
from app.gitlab.events import parse_event
from app.jobs.data_checks import DataCheckReport, backoff, run_data_checks, schedule_rechecks
from scripts.harness import Simulator
from tests.conftest import TOKENS, bearer
from tests.e2e.gitlab_hooks import ZERO_SHA, header_for, merge_request_payload, push_payload

SECRET = "hook-secret-0123456789"
SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
PUBLIC = "https://data.example.com"
CONFIG = "[core]\n    remote = registry\n['remote \"registry\"']\n    url = {url}\n"


# --- payloads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("system", [False, True])
def test_push_payloads(system: bool) -> None:
    event = parse_event(push_payload(101, "ml/vision", SHA, branch="feature/x", system=system))
    assert (event.name, event.project_id, event.sha, event.ref) == ("push", 101, SHA, "feature/x")


def test_a_deleted_branch_has_nothing_to_check() -> None:
    event = parse_event(push_payload(101, "ml/vision", ZERO_SHA))
    assert (event.name, event.sha) == ("push", None)


@pytest.mark.parametrize("system", [False, True])
@pytest.mark.parametrize("action", ["open", "reopen", "update"])
def test_merge_request_payloads(system: bool, action: str) -> None:
    payload = merge_request_payload(106, "ml/pipeline", SHA, action=action, system=system)
    assert "event_name" not in payload
    event = parse_event(payload)
    assert (event.name, event.project_id, event.sha, event.ref) == ("merge_request", 106, SHA, "feature")


@pytest.mark.parametrize("action", ["close", "merge", "approved", "unapproved", "approval"])
def test_merge_requests_closed_or_approved_bring_no_commit(action: str) -> None:
    assert parse_event(merge_request_payload(106, "ml/pipeline", SHA, action=action)).sha is None


def test_the_merge_request_commit_is_the_source_projects() -> None:
    payload = merge_request_payload(106, "ml/pipeline", SHA)
    payload["object_attributes"]["source_project_id"] = 777  # a fork
    assert parse_event(payload).project_id == 777


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({**push_payload(101, "ml/vision", SHA), "after": "not-a-sha"}, "after: not a commit sha"),
        ({k: v for k, v in push_payload(101, "ml/vision", SHA).items() if k != "project_id"}, "project_id"),
        ({"object_kind": "merge_request"}, "merge_request without object_attributes"),
        ({"object_kind": "merge_request", "object_attributes": {"action": "open"}}, "source_project_id"),
        ({"project_id": 101}, "neither event_name nor object_kind"),
    ],
)
def test_malformed_payloads_name_the_field(payload: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadRequest, match=problem):
        parse_event(payload)


# --- descriptions ---------------------------------------------------------------------------------


def test_descriptions_a_person_can_act_on() -> None:
    complete = [Finding("data.dvc", 12_000, 0), Finding("model.pkl.dvc", 1, 0), Finding("x.dvc", 34, 0)]
    assert describe(complete) == ("success", "3 datasets, 12,035 files, all in the registry")
    assert describe([Finding("model.pkl.dvc", 1, 0)]) == ("success", "1 dataset, 1 file, all in the registry")
    assert describe([]) == ("success", "No DVC-tracked data in this commit")
    broken = [
        Finding("data.dvc", 2_000, 17),
        Finding("model.pkl in dvc.lock", 1, 1, pushed=False),
        Finding("images.dvc", 300, 300, pushed=False),
        Finding("a.dvc", None, 1, pushed=False),
    ]
    assert describe(broken) == (
        "failed",
        "data.dvc: 17 of 2,000 files missing; model.pkl in dvc.lock: not pushed (1 file);"
        " images.dvc: not pushed (300 files); a.dvc: not pushed — run dvc push",
    )
    many = [Finding(f"datasets/part-{i:03d}.dvc", 10, 10) for i in range(40)]
    state, said = describe(many)
    assert state == "failed" and len(said) <= 255 and said.endswith("more datasets — run dvc push")


def test_backoff_grows_and_is_bounded() -> None:
    assert [backoff(a) for a in range(4)] == [30, 60, 120, 240]
    assert backoff(20) == 3600 and backoff(0, retry_after=300) == 300


# --- the queue ------------------------------------------------------------------------------------


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(
        webhook_secret=SECRET,
        gitlab_service_token=TOKENS["admin"],
        public_url=PUBLIC,
        download_mode="redirect",
    )


@pytest.fixture
def parts(app: Flask) -> Components:
    found: Components = app.extensions["data_registry"]
    return found


def test_a_burst_of_events_is_one_request(parts: Components) -> None:
    queue = parts.data_checks
    outcomes = [queue.request(101, SHA, "main") for _ in range(20)]
    assert outcomes == ["data check queued"] + ["data check already asked for"] * 19
    assert queue.request(101, SHA, "feature") == "data check already asked for"  # the first branch's
    assert queue.request(102, SHA, "main") == "data check queued"  # another project
    assert len(queue.claim_due(lease=60, limit=10)) == 2


def test_one_worker_at_a_time_holds_a_check(parts: Components, database_url: str) -> None:
    queue = parts.data_checks
    queue.request(101, SHA, "main")
    other = DataCheckQueue(build_engine(database_url))  # another replica's worker
    first = queue.claim_due(lease=60, limit=10)
    assert [c.sha for c in first] == [SHA]
    assert other.claim_due(lease=60, limit=10) == []
    later = datetime.now(UTC) + timedelta(seconds=61)  # the lease ran out: the holder died
    assert [c.sha for c in other.claim_due(lease=60, limit=10, now=later)] == [SHA]


# --- the job, against the simulator ---------------------------------------------------------------


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def cas(md5_hex: str, suffix: str = "") -> str:
    return f"dvc/files/md5/{md5_hex[:2]}/{md5_hex[2:]}{suffix}"


@dataclass
class Repo:
    files: dict[str, bytes]  # the dataset's files
    manifest: bytes
    model: bytes

    @property
    def dir_md5(self) -> str:
        return md5(self.manifest)

    def dvc_files(self, remote: str) -> dict[str, bytes]:
        data = f"outs:\n- md5: {self.dir_md5}.dir\n  size: 30\n  nfiles: {len(self.files)}\n  path: data\n"
        lock = (
            "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n    outs:\n"
            f"    - path: model.pkl\n      md5: {md5(self.model)}\n      size: {len(self.model)}\n"
        )
        return {
            ".dvc/config": CONFIG.format(url=remote).encode(),
            "data.dvc": data.encode(),
            "dvc.lock": lock.encode(),
            "README.md": b"# vision\n",
        }


def make_repo(count: int = 3) -> Repo:
    files = {f"img-{i}.png": f"image {i}".encode() for i in range(count)}
    entries = [{"md5": md5(body), "relpath": name} for name, body in sorted(files.items())]
    return Repo(files, json.dumps(entries).encode(), b"model weights")


def put(client: FlaskClient, path: str, body: bytes) -> None:
    assert client.put(f"/ml/vision/-/data/{path}", data=body, headers=bearer("developer")).status_code in (
        200,
        201,
    )


def push_all(client: FlaskClient, repo: Repo) -> None:
    """What `dvc push` sends: the files, then the directory's .dir listing."""
    for body in [*repo.files.values(), repo.model]:
        put(client, cas(md5(body)), body)
    put(client, cas(repo.dir_md5, ".dir"), repo.manifest)


def hook(client: FlaskClient, payload: dict[str, Any]) -> Any:
    answer = client.post(
        "/-/hooks/gitlab",
        data=json.dumps(payload),
        headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": header_for(payload)},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.json
    return answer.json


def run(
    parts: Components, *, now: datetime | None = None, settle: float = 0, **checker: Any
) -> DataCheckReport:
    return run_data_checks(
        parts.data_checks,
        DataChecker(
            gateway=parts.gateway, index=parts.index, storage=parts.storage, public_url=PUBLIC, **checker
        ),
        parts.gateway,
        parts.status_credential,
        parts.index,
        settle=settle,
        now=now,
    )


def posts(simulator: Simulator) -> list[tuple[str, str]]:
    return [(p["state"], p["description"]) for p in simulator.world.status_posts]


def test_a_push_is_checked_and_turns_green_when_the_data_arrives(
    parts: Components, app: Flask, simulator: Simulator
) -> None:
    client, repo, world = app.test_client(), make_repo(), simulator.world
    world.commit(101, "main", {"README.md": b"# vision\n"})
    sha = world.commit(101, "main", repo.dvc_files(f"{PUBLIC}/ml/vision/-/data/dvc"), "Add data")
    parent = world.commits[101][sha]["parent_ids"][0]
    first = next(iter(repo.files.values()))
    put(client, cas(md5(first)), first)  # a push that stopped before the .dir listing (DVC sends it last)

    assert hook(client, push_payload(101, "ml/vision", sha)) == {
        "event": "push",
        "outcome": "data check queued",
    }
    report = run(parts)
    assert (report.checked, report.posted) == (1, 2)
    assert posts(simulator) == [
        ("pending", "Checking that the data this commit names is in the registry"),
        (
            "failed",
            "data.dvc: not pushed (3 files); model.pkl in dvc.lock: not pushed (1 file) — run dvc push",
        ),
    ]
    status = world.status_posts[-1]
    assert (status["name"], status["ref"]) == ("data-registry", "main")
    assert status["target_url"] == f"{PUBLIC}/ml/vision/-/data/?compare={parent}...{sha}"

    assert run(parts) == DataCheckReport()  # nothing due, nothing uploaded: nothing posted
    push_all(client, repo)
    assert run(parts, settle=3600).rechecks == 0  # the uploads have not settled yet
    report = run(parts, now=datetime.now(UTC) + timedelta(seconds=5), settle=1)
    assert (report.rechecks, report.checked, report.posted) == (1, 1, 1)
    assert posts(simulator)[-1] == ("success", "2 datasets, 4 files, all in the registry")
    assert run(parts, now=datetime.now(UTC) + timedelta(seconds=10), settle=1) == DataCheckReport()
    assert len(world.status_posts) == 3


def test_a_burst_of_twenty_events_makes_two_posts(
    parts: Components, app: Flask, simulator: Simulator
) -> None:
    client, repo = app.test_client(), make_repo()
    sha = simulator.world.commit(101, "feature", repo.dvc_files(f"{PUBLIC}/-/projects/101/data/dvc"))
    push_all(client, repo)
    for i in range(20):
        started = time.monotonic()
        push = push_payload(101, "ml/vision", sha, branch="feature")
        hook(client, push if i % 2 else merge_request_payload(101, "ml/vision", sha))
        assert time.monotonic() - started < 1
    run(parts)
    run(parts)
    assert posts(simulator) == [
        ("pending", "Checking that the data this commit names is in the registry"),
        ("success", "2 datasets, 4 files, all in the registry"),
    ]
    assert simulator.world.status_posts[0]["target_url"] == f"{PUBLIC}/ml/vision/-/data/?ref={sha}"


def test_a_merge_request_sets_the_status_on_its_source_branch(
    parts: Components, app: Flask, simulator: Simulator
) -> None:
    repo = make_repo()
    sha = simulator.world.commit(101, "feature", repo.dvc_files(f"{PUBLIC}/ml/vision/-/data/dvc"))
    outcome = hook(app.test_client(), merge_request_payload(101, "ml/vision", sha, system=True))
    assert outcome == {"event": "merge_request", "outcome": "data check queued"}
    run(parts)
    assert [p["ref"] for p in simulator.world.status_posts] == ["feature", "feature"]
    assert posts(simulator)[-1][1].startswith("data.dvc: not pushed (3 files)")


def test_repositories_without_a_remote_here_get_no_status(
    parts: Components, app: Flask, simulator: Simulator
) -> None:
    client, repo = app.test_client(), make_repo()
    plain = simulator.world.commit(101, "main", {"README.md": b"no dvc here\n"})
    elsewhere = simulator.world.commit(106, "main", repo.dvc_files("s3://bucket/elsewhere"))
    hook(client, push_payload(101, "ml/vision", plain))
    hook(client, push_payload(106, "ml/pipeline", elsewhere))
    assert run(parts).checked == 2
    assert simulator.world.status_posts == []


def test_an_s3_remote_through_the_door_is_checked(
    parts: Components, app: Flask, simulator: Simulator
) -> None:
    client, repo = app.test_client(), make_repo()
    files = repo.dvc_files("s3://dvc")
    files[".dvc/config"] += f"    endpointurl = {PUBLIC}/ml/vision/-/s3\n".encode()
    sha = simulator.world.commit(101, "main", files)
    push_all(client, repo)
    hook(client, push_payload(101, "ml/vision", sha))
    run(parts)
    assert posts(simulator)[-1] == ("success", "2 datasets, 4 files, all in the registry")


def test_a_repository_too_large_to_read_is_skipped(
    parts: Components, app: Flask, simulator: Simulator
) -> None:
    sha = simulator.world.commit(101, "main", make_repo().dvc_files(f"{PUBLIC}/ml/vision/-/data/dvc"))
    hook(app.test_client(), push_payload(101, "ml/vision", sha))
    run(parts, max_dvc_files=1)
    assert posts(simulator)[-1] == (
        "skipped",
        "Not checked: 2 .dvc and dvc.lock files, more than the 1 a check reads",
    )


def test_a_gitlab_outage_is_retried_later_and_never_blocks_hooks(
    parts: Components, app: Flask, simulator: Simulator
) -> None:
    client, world = app.test_client(), simulator.world
    sha = world.commit(101, "main", make_repo().dvc_files(f"{PUBLIC}/ml/vision/-/data/dvc"))
    world.fault, world.fault_count = 503, 1000
    started = time.monotonic()
    assert hook(client, push_payload(101, "ml/vision", sha))["outcome"] == "data check queued"
    assert time.monotonic() - started < 1
    now = datetime.now(UTC)
    assert run(parts, now=now).retried == 1
    check = parts.data_checks.get(101, sha)
    assert check is not None and check.attempts == 1 and check.posted is None
    assert run(parts, now=now + timedelta(seconds=10)) == DataCheckReport()  # backing off
    world.fault = world.fault_count = None
    report = run(parts, now=now + timedelta(seconds=31))
    assert (report.checked, report.posted) == (1, 2)
    assert posts(simulator)[-1][0] == "failed"


def test_one_commits_surprise_does_not_stop_the_others(
    parts: Components, app: Flask, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in one check is logged and that check retried later; the batch goes on."""
    client, world = app.test_client(), simulator.world
    files = make_repo().dvc_files(f"{PUBLIC}/ml/vision/-/data/dvc")
    broken = world.commit(101, "main", files)
    fine = world.commit(101, "main", {**files, "README.md": b"hello"})
    for sha in (broken, fine):
        hook(client, push_payload(101, "ml/vision", sha))
    opened = DataChecker.open

    def open_or_fail(self: DataChecker, credential: Any, project_id: int, sha: str) -> Any:
        if sha == broken:
            raise RuntimeError("a surprise")
        return opened(self, credential, project_id, sha)

    monkeypatch.setattr(DataChecker, "open", open_or_fail)
    now = datetime.now(UTC)
    report = run(parts, now=now)
    assert (report.checked, report.retried) == (1, 1)
    assert {p["sha"] for p in world.status_posts} == {fine}
    again = parts.data_checks.get(101, broken)
    assert again is not None and again.attempts == 1 and again.posted is None
    monkeypatch.setattr(DataChecker, "open", opened)
    assert run(parts, now=now + timedelta(seconds=31)).checked == 1
    assert {p["sha"] for p in world.status_posts} == {fine, broken}


def test_the_debounce(parts: Components) -> None:
    """A failed check is due again once the project's newest object is newer than it and `settle` old."""
    queue, t0 = parts.data_checks, datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    queue.request(101, SHA, "main", now=t0)
    [check] = queue.claim_due(lease=60, limit=1, now=t0)
    queue.finish(check, Posted("main", "failed", "data.dvc: 1 of 1 file missing"), now=t0)

    class Index:
        last: datetime | None = None

        def last_upload(self, project_id: int) -> datetime | None:
            return self.last

    index: Any = Index()
    assert schedule_rechecks(queue, index, settle=15, now=t0 + timedelta(seconds=60)) == 0  # no upload
    index.last = t0 - timedelta(seconds=1)
    assert schedule_rechecks(queue, index, settle=15, now=t0 + timedelta(seconds=60)) == 0  # older than it
    index.last = t0 + timedelta(seconds=50)
    assert schedule_rechecks(queue, index, settle=15, now=t0 + timedelta(seconds=60)) == 0  # still arriving
    assert schedule_rechecks(queue, index, settle=15, now=t0 + timedelta(seconds=65)) == 1
    assert schedule_rechecks(queue, index, settle=15, now=t0 + timedelta(seconds=66)) == 0  # due already
    [again] = queue.claim_due(lease=60, limit=1, now=t0 + timedelta(seconds=66))
    assert again.rechecks == 1


def test_no_token_no_checks(make_app: Callable[..., Flask]) -> None:
    app = make_app(webhook_secret=SECRET)
    answer = hook(app.test_client(), push_payload(101, "ml/vision", SHA))
    assert answer["outcome"].startswith("ignored: data checks are off")
    assert app.extensions["data_registry"].data_checks.get(101, SHA) is None
