"""The worker's jobs as plain functions: deleting queued projects (resumable, idempotent, nothing of
another project touched), the reconciler against the GitLab simulator, the usage sweep, stale uploads."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.components import Components, build_components
from app.jobs.cleanup import remove_stale_uploads
from app.jobs.deletion import delete_queued_projects
from app.jobs.reconcile import reconcile
from app.jobs.usage_sweep import sweep_usage
from app.model.paths import ObjectPath, version_key
from scripts.harness import Simulator
from tests.conftest import TOKENS, bearer, usage_of


@pytest.fixture
def parts(
    make_app: Callable[..., Flask], tmp_path: Path, simulator: Simulator, database_url: str
) -> Components:
    make_app()  # migrates the index
    return build_components(
        {
            "storage_url": f"file://{tmp_path / 'storage'}",
            "database_url": database_url,
            "gitlab_url": simulator.url,
            "gitlab_service_token": TOKENS["admin"],
        }
    )


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


def fill(client: FlaskClient, project: str, count: int) -> dict[str, bytes]:
    stored = {}
    for i in range(count):
        body = f"{project} object {i}".encode()
        md5 = hashlib.md5(body).hexdigest()
        path = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
        assert (
            client.put(f"/{project}/-/data/{path}", data=body, headers=bearer("developer")).status_code == 201
        )
        stored[path] = body
    return stored


def blobs(parts: Components, project_id: int) -> list[str]:
    return sorted(b.key for b in parts.storage.list(f"projects/{project_id}/"))


def queue(parts: Components, project_id: int) -> None:
    with parts.lifecycle.writing() as tx:
        assert tx.request_deletion(project_id, None, "test")


class FailingAfter:
    """The storage, failing its nth delete_many call like a worker killed mid-way."""

    def __init__(self, storage: Any, calls: int) -> None:
        self._storage, self._left = storage, calls

    def delete_many(self, keys: Sequence[str]) -> None:
        self._left -= 1
        if self._left < 0:
            raise RuntimeError("worker killed")
        self._storage.delete_many(keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def test_deletion_resumes_and_leaves_other_projects_alone(parts: Components, client: FlaskClient) -> None:
    doomed = fill(client, "ml/vision", 25)
    kept = fill(client, "ml/pipeline", 5)
    queue(parts, 101)
    with pytest.raises(RuntimeError, match="worker killed"):
        delete_queued_projects(parts.lifecycle, FailingAfter(parts.storage, 2), batch=10, lease=0)
    assert 0 < len(blobs(parts, 101)) < len(doomed)
    assert parts.lifecycle.state(101) == "deleting"
    report = delete_queued_projects(parts.lifecycle, parts.storage, batch=10, lease=0)
    assert report.projects == [101] and report.objects == 5  # the rest of the 25
    assert blobs(parts, 101) == [] and parts.lifecycle.state(101) == "deleted"
    assert usage_of(parts.index, 101) == (0, 0)
    for path, body in kept.items():
        got = client.get(f"/ml/pipeline/-/data/{path}", headers=bearer("developer"), follow_redirects=True)
        assert got.data == body
    assert delete_queued_projects(parts.lifecycle, parts.storage).projects == []  # idempotent
    refused = client.put("/ml/vision/-/data/again.bin", data=b"x", headers=bearer("developer"))
    assert refused.status_code == 404 and refused.json["error"]["code"] == "project_deleted"


def test_unindexed_blobs_of_a_deleted_project_go_too(parts: Components, client: FlaskClient) -> None:
    fill(client, "ml/vision", 2)
    stray = parts.storage.stage("projects/101/never/indexed.bin", iter([b"stray"]))
    parts.storage.commit(stray)
    queue(parts, 101)
    delete_queued_projects(parts.lifecycle, parts.storage)
    assert blobs(parts, 101) == []


def test_a_claimed_deletion_is_not_claimed_twice(parts: Components) -> None:
    queue(parts, 101)
    queue(parts, 106)
    first, second = parts.lifecycle.claim_deletion(60), parts.lifecycle.claim_deletion(0)
    assert first is not None and second is not None
    assert {first.project_id, second.project_id} == {101, 106}
    third = parts.lifecycle.claim_deletion(60)  # 101 is held; 106's lease (0 s) has run out
    assert third is not None and third.project_id == second.project_id
    assert parts.lifecycle.claim_deletion(60) is None


def test_reconciler_queues_a_deleted_project_after_the_grace_period(
    parts: Components, client: FlaskClient, simulator: Simulator
) -> None:
    fill(client, "ml/vision", 1)
    fill(client, "ml/pipeline", 1)
    del simulator.world.projects[101]
    now = datetime.now(UTC)
    first = reconcile(parts.lifecycle, parts.gateway, parts.service, grace=3600, now=now)
    assert first.skipped is None and first.missing == [101] and first.queued == []
    early = reconcile(
        parts.lifecycle, parts.gateway, parts.service, grace=3600, now=now + timedelta(minutes=30)
    )
    assert early.queued == [] and parts.lifecycle.state(101) == "active"
    late = reconcile(parts.lifecycle, parts.gateway, parts.service, grace=3600, now=now + timedelta(hours=2))
    assert late.queued == [101] and parts.lifecycle.state(101) == "deleting"
    assert parts.lifecycle.state(106) == "active"


def test_reconciler_keeps_projects_marked_for_deletion_and_forgets_a_restored_one(
    parts: Components, client: FlaskClient, simulator: Simulator
) -> None:
    fill(client, "ml/vision", 1)
    simulator.world.projects[101]["marked_for_deletion_on"] = "2026-11-20"
    now = datetime.now(UTC)
    for hours in (0, 48):
        report = reconcile(
            parts.lifecycle, parts.gateway, parts.service, grace=3600, now=now + timedelta(hours=hours)
        )
        assert report.missing == [] and report.queued == []
    project = simulator.world.projects.pop(101)
    assert reconcile(parts.lifecycle, parts.gateway, parts.service, grace=3600, now=now).missing == [101]
    simulator.world.projects[101] = project  # restored before the grace period ended
    reconcile(parts.lifecycle, parts.gateway, parts.service, grace=3600, now=now + timedelta(minutes=1))
    del simulator.world.projects[101]
    again = reconcile(parts.lifecycle, parts.gateway, parts.service, grace=3600, now=now + timedelta(hours=2))
    assert again.queued == [] and again.missing == [101]  # the clock starts over


@pytest.mark.parametrize("fault", [503, 429, 500])
def test_reconciler_decides_nothing_while_gitlab_is_down(
    parts: Components, client: FlaskClient, simulator: Simulator, fault: int
) -> None:
    fill(client, "ml/vision", 1)
    now = datetime.now(UTC)
    del simulator.world.projects[101]
    reconcile(parts.lifecycle, parts.gateway, parts.service, grace=0, now=now)
    simulator.world.fault = fault
    try:
        report = reconcile(
            parts.lifecycle, parts.gateway, parts.service, grace=0, now=now + timedelta(days=1)
        )
    finally:
        simulator.world.fault = None
    assert report.skipped is not None and report.queued == []
    assert parts.lifecycle.state(101) == "active"


def test_reconciler_needs_an_administrators_token(
    parts: Components, client: FlaskClient, simulator: Simulator
) -> None:
    fill(client, "ml/vision", 1)
    del simulator.world.projects[101]
    none = reconcile(parts.lifecycle, parts.gateway, None, grace=0)
    assert none.skipped and "REGISTRY_GITLAB_SERVICE_TOKEN" in none.skipped
    from app.model.identity import Credential, CredentialKind

    maintainer = Credential(CredentialKind.ACCESS_TOKEN, TOKENS["maintainer"])  # sees only its projects
    for _ in range(2):
        report = reconcile(parts.lifecycle, parts.gateway, maintainer, grace=0)
        assert report.skipped and "administrator" in report.skipped
    assert parts.lifecycle.state(101) == "active"


def test_usage_sweep_reconciles_the_index_with_the_bucket(parts: Components, client: FlaskClient) -> None:
    stored = fill(client, "ml/vision", 4)
    root = Path(parts.storage.root)  # type: ignore[attr-defined]
    behind = root / "projects/101/written/behind.bin"
    behind.parent.mkdir(parents=True)
    behind.write_bytes(b"x" * 1000)
    gone = sorted(stored)[0]
    (root / "projects/101" / gone).unlink()
    report = sweep_usage(parts.lifecycle, parts.index, parts.storage)
    assert (report.indexed, report.dropped) == (1, 1)
    head = client.head("/ml/vision/-/data/written/behind.bin", headers=bearer("developer"))
    assert head.status_code == 200 and head.headers["X-Checksum-MD5"] == hashlib.md5(b"x" * 1000).hexdigest()
    assert client.head(f"/ml/vision/-/data/{gone}", headers=bearer("developer")).status_code == 404
    expected = sum(len(b) for p, b in stored.items() if p != gone) + 1000
    assert usage_of(parts.index, 101) == (expected, 4)
    again = sweep_usage(parts.lifecycle, parts.index, parts.storage)
    assert (again.indexed, again.dropped) == (0, 0)


@pytest.mark.parametrize("size_changes", [True, False])
def test_usage_sweep_corrects_rows_whose_bytes_changed(
    parts: Components, client: FlaskClient, size_changes: bool
) -> None:
    """An object written before version keys lives at its path's own key, where an overwrite cut off
    between the bucket and the index (a crash) could leave new bytes under an old row: the sweep indexes
    what is stored, by size, or by the bytes when they were written after the row."""
    stored = Path(parts.storage.root) / "projects/101/notes.txt"  # type: ignore[attr-defined]
    unchanged = fill(client, "ml/vision", 3)
    stored.write_bytes(b"old text")
    assert sweep_usage(parts.lifecycle, parts.index, parts.storage).indexed == 1  # a row at its own key
    new = b"new text!" if size_changes else b"new text"
    stored.write_bytes(new)  # as the killed upload's rename left it
    report = sweep_usage(parts.lifecycle, parts.index, parts.storage)
    assert report.corrected == 1 and (report.indexed, report.dropped) == (0, 0)
    head = client.head("/ml/vision/-/data/notes.txt", headers=bearer("developer"))
    assert head.headers["X-Checksum-MD5"] == hashlib.md5(new).hexdigest()
    assert int(head.headers["Content-Length"]) == len(new)
    assert usage_of(parts.index, 101) == (len(new) + sum(map(len, unchanged.values())), 4)
    assert sweep_usage(parts.lifecycle, parts.index, parts.storage).corrected == 0


def test_an_overwrite_writes_a_new_key_and_the_sweep_removes_only_unreferenced_old_versions(
    parts: Components, client: FlaskClient
) -> None:
    """A new version of a path gets a key of its own; the one it replaces stays under its key as the
    trash's version (DESIGN 3.10); a version nothing points to (a write cut off after the bucket, before
    the index) is removed by the sweep once it is old enough not to be an upload on its way, never the
    indexed one."""
    root = Path(parts.storage.root)  # type: ignore[attr-defined]
    url, auth = "/ml/vision/-/data/notes.txt", bearer("developer")
    assert client.put(url, data=b"first", headers=auth).status_code == 201
    first = parts.index.get(101, "notes.txt")
    assert first is not None and first.key.startswith("versions/101/") and first.key.endswith("/notes.txt")
    assert (root / first.key).read_bytes() == b"first"
    assert client.put(f"{url}?overwrite=true", data=b"second", headers=auth).status_code == 200  # replaced
    second = parts.index.get(101, "notes.txt")
    assert second is not None and second.key != first.key and (root / second.key).read_bytes() == b"second"
    assert (root / first.key).read_bytes() == b"first"  # replaced: kept, as the trash's version
    trashed = client.get("/api/v1/projects/101/trash", headers=bearer("maintainer")).json["objects"]
    assert [(t["path"], t["md5"]) for t in trashed] == [("notes.txt", first.md5)]
    young, old = root / "versions/101/aaaaaaaaaaaaaaaa/notes.txt", root / "versions/101/bbbbbbbbbbbbbbbb/x"
    for orphan in (young, old):
        orphan.parent.mkdir(parents=True)
        orphan.write_bytes(b"cut off")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    report = sweep_usage(parts.lifecycle, parts.index, parts.storage)
    assert (report.orphans, report.corrected, report.dropped) == (1, 0, 0)
    assert young.exists() and not old.exists() and (root / second.key).read_bytes() == b"second"
    assert client.get(url, headers=auth, follow_redirects=True).data == b"second"


def test_a_version_committed_but_never_indexed_changes_nothing_that_is_served(
    parts: Components, client: FlaskClient
) -> None:
    """Two overwrites race: the loser staged its bytes before the winner's row was written, then was killed
    between committing them and indexing. Its bytes went to a key of their own: the indexed object serves
    the winner's bytes with no repair (before any sweep), and the sweep removes the loser's once old."""
    late_key = version_key(101, ObjectPath("notes.txt"))
    late = parts.storage.stage(late_key, iter([b"loser's!"]))  # staged first
    assert (
        client.put("/ml/vision/-/data/notes.txt", data=b"winner's", headers=bearer("developer")).status_code
        == 201
    )
    parts.storage.commit(late)  # ... and the process died before its index transaction
    head = client.head("/ml/vision/-/data/notes.txt", headers=bearer("developer"))
    assert head.headers["X-Checksum-MD5"] == hashlib.md5(b"winner's").hexdigest()
    assert client.get(
        "/ml/vision/-/data/notes.txt", headers=bearer("developer"), follow_redirects=True
    ).data == (b"winner's")
    root = Path(parts.storage.root)  # type: ignore[attr-defined]
    os.utime(root / late_key, (time.time() - 7200, time.time() - 7200))
    report = sweep_usage(parts.lifecycle, parts.index, parts.storage)
    assert (report.corrected, report.orphans) == (0, 1) and not (root / late_key).exists()


def test_stale_uploads_are_removed(parts: Components, client: FlaskClient) -> None:
    session = client.post(
        "/api/v1/projects/101/uploads", json={"path": "big.bin", "size": 4}, headers=bearer("developer")
    ).json
    assert client.put(session["parts"][0]["url"], data=b"data").status_code == 200
    root = Path(parts.storage.root)  # type: ignore[attr-defined]
    old_tmp = root / ".tmp" / "upload-crashed"
    old_tmp.write_bytes(b"half")
    os.utime(old_tmp, (0, 0))
    assert remove_stale_uploads(parts.upload_sessions, parts.storage, age=3600) == 1  # the old temp file only
    assert (root / "uploads" / session["id"]).exists()
    later = datetime.now(UTC) + timedelta(days=2)  # past the session's 24 h
    assert remove_stale_uploads(parts.upload_sessions, parts.storage, age=3600, now=later) == 1
    assert not (root / "uploads" / session["id"]).exists()
    done = client.post(f"/api/v1/projects/101/uploads/{session['id']}/complete", headers=bearer("developer"))
    assert done.status_code == 404


def test_old_hook_deliveries_are_forgotten(parts: Components) -> None:
    from app.jobs.cleanup import forget_old_deliveries

    with parts.lifecycle.writing() as tx:
        assert tx.first_delivery("delivery-1", "project_destroy")
    assert forget_old_deliveries(parts.lifecycle, age=3600) == 0  # recent: still deduplicates
    with parts.lifecycle.writing() as tx:
        assert not tx.first_delivery("delivery-1", "project_destroy")
    later = datetime.now(UTC) + timedelta(days=31)
    assert forget_old_deliveries(parts.lifecycle, age=30 * 86400, now=later) == 1
    with parts.lifecycle.writing() as tx:
        assert tx.first_delivery("delivery-1", "project_destroy")


def test_job_reports_read_as_sentences() -> None:
    from app.jobs.deletion import DeletionReport
    from app.jobs.scheduler import readable
    from app.jobs.usage_sweep import SweepReport

    assert readable(DeletionReport([101, 104], 2_500)) == "projects: 101, 104, 2,500 objects"
    assert readable(DeletionReport()) == "projects: none, 0 objects"
    assert readable(SweepReport()) == "0 projects, 0 indexed, 0 dropped, 0 corrected, 0 orphans"
    assert readable(12_000) == "12,000" and readable(None) == "None"
