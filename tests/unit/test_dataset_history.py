"""A dataset's history: a `.dvc` file's commits as GitLab lists them, and for a `dvc.lock` output only
the commits of the lock in which that output's md5 changed, with a bound on the locks read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.dataset_history import Histories, lock_changes, lock_source, output_md5
from app.datasets import Dataset
from app.errors import NotFound
from app.model.commits import CommitInfo
from app.model.projects import ProjectRef

A, B = "a" * 32, "b" * 32


def _commit(sha: str, parent: str | None) -> CommitInfo:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    return CommitInfo(
        sha * 40, sha * 8, f"commit {sha}", "", "Ada", when, (parent * 40,) if parent else (), ""
    )


def _lock(model: str | None, other: str = A) -> bytes:
    outs = f"    - path: model.pkl\n      md5: {model}\n" if model else ""
    head = "schema: '2.0'\nstages:\n  train:\n    cmd: x\n    outs:\n"
    return f"{head}{outs}    - path: other\n      md5: {other}\n".encode()


def test_where_a_dataset_is_defined() -> None:
    assert lock_source("sub/dvc.lock: train") == "sub/dvc.lock"
    assert lock_source("dvc.lock: train") == "dvc.lock"
    assert lock_source("data.dvc") is None
    assert output_md5("dvc.lock", _lock(B), "model.pkl") == B
    assert output_md5("dvc.lock", _lock(None), "model.pkl") is None
    assert output_md5("dvc.lock", b"[", "model.pkl") is None


def test_only_the_commits_that_changed_the_output() -> None:
    # e: changed only `other`; d: changed model; c: added model; b: lock without it; no parent of b
    commits = [_commit("e", "d"), _commit("d", "c"), _commit("c", "b"), _commit("b", None)]
    locks = {"e": _lock(B, other=B), "d": _lock(B), "c": _lock(A), "b": _lock(None)}
    reads: list[str] = []

    def read(sha: str) -> bytes | None:
        reads.append(sha)
        return locks[sha[0]]

    entries, truncated = lock_changes(commits, read, "dvc.lock", "model.pkl")
    assert [e.commit.short_id[0] for e in entries] == ["d", "c"]
    assert [e.md5 for e in entries] == [B, A]
    assert not truncated
    assert sorted(reads) == sorted(set(reads))  # each lock read once


def test_reads_are_bounded_and_say_so() -> None:
    commits = [_commit(c, p) for c, p in zip("fedcb", "edcba", strict=True)]
    entries, truncated = lock_changes(
        commits, lambda sha: _lock(sha[0] * 32), "dvc.lock", "model.pkl", max_reads=4
    )
    assert truncated
    assert [e.commit.short_id[0] for e in entries] == ["f", "e", "d"]


class _Fakes:
    def __init__(self, datasets: list[Dataset]) -> None:
        self.datasets = datasets
        self.asked: list[dict[str, object]] = []

    def at_ref(self, credential: object, ref: ProjectRef, git_ref: str | None) -> object:
        return type("Page", (), {"ref": git_ref or "main", "datasets": self.datasets})()

    def commits(
        self, credential: object, project_id: int, *, ref: str, path: str, limit: int
    ) -> list[CommitInfo]:
        self.asked.append({"ref": ref, "path": path})
        return [_commit("c", "b"), _commit("b", None)]


def test_a_dvc_file_s_history_is_its_commits() -> None:
    fakes = _Fakes([Dataset("data/images", "data/images.dvc", A + ".dir", None, None, None, 1)])
    histories = Histories(gateway=fakes, datasets=fakes)  # type: ignore[arg-type]
    history = histories.of(None, ProjectRef(id=1), 1, "data/images", "v2")
    assert fakes.asked == [{"ref": "v2", "path": "data/images.dvc"}]
    assert [e.commit.short_id[0] for e in history.entries] == ["c", "b"]
    assert (history.source, history.ref, history.truncated) == ("data/images.dvc", "v2", False)
    with pytest.raises(NotFound, match="nothing"):
        histories.of(None, ProjectRef(id=1), 1, "nothing", None)
