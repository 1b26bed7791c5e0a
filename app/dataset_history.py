"""A dataset's history: the commits that changed its `.dvc` file (GitLab's commits of that path), or, for
a `dvc.lock` output, the commits of that `dvc.lock` in which the output's md5 changed (the lock read at
each commit and its parent, a bounded number of reads; past them the older history is not shown)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.datasets import Datasets, outputs
from app.errors import NotFound
from app.gitlab.gateway import GitLabGateway
from app.model.commits import CommitInfo
from app.model.identity import Credential
from app.model.projects import ProjectRef

MAX_COMMITS = 50  # commits listed of a `.dvc` file (GitLab's per_page allows 100)
MAX_LOCK_READS = 60  # dvc.lock files read to tell which of its commits changed one output


@dataclass(frozen=True)
class HistoryEntry:
    """A commit that changed the dataset; `md5` is the output's after it (None: gone or not read)."""

    commit: CommitInfo
    md5: str | None = None


@dataclass(frozen=True)
class History:
    name: str
    ref: str
    source: str  # the `.dvc` file or the `dvc.lock` whose commits these are
    entries: list[HistoryEntry]
    truncated: bool  # older history not shown


def lock_source(source: str) -> str | None:
    """The `dvc.lock` path of a dataset's source (`<path>/dvc.lock: <stage>`), None for a `.dvc` file."""
    path = source.partition(": ")[0]
    return path if path.rpartition("/")[2] == "dvc.lock" else None


def output_md5(lock_path: str, content: bytes | None, name: str) -> str | None:
    """The md5 a `dvc.lock` gives the output `name`, None when it names no such output."""
    return next((str(out["md5"]) for n, _, out in outputs(lock_path, content or b"") if n == name), None)


def lock_changes(
    commits: list[CommitInfo],
    read: Callable[[str], bytes | None],
    lock_path: str,
    name: str,
    *,
    max_reads: int = MAX_LOCK_READS,
) -> tuple[list[HistoryEntry], bool]:
    """Those of `commits` (newest first) in which the output's md5 differs from their first parent's, and
    whether reads ran out before the last. `read(sha)` is the lock at a commit; each sha is read once."""
    seen: dict[str, str | None] = {}

    def md5_at(sha: str) -> str | None:
        if sha not in seen:
            seen[sha] = output_md5(lock_path, read(sha), name)
        return seen[sha]

    entries: list[HistoryEntry] = []
    for commit in commits:
        wanted = [sha for sha in (commit.id, commit.parent) if sha is not None and sha not in seen]
        if len(seen) + len(wanted) > max_reads:
            return entries, True
        after = md5_at(commit.id)
        before = md5_at(commit.parent) if commit.parent else None
        if after != before:
            entries.append(HistoryEntry(commit, after))
    return entries, False


class Histories:
    """The history of a dataset named at a ref. The caller has read the project (`project_id`); the
    repository is read with the caller's credential."""

    def __init__(self, *, gateway: GitLabGateway, datasets: Datasets) -> None:
        self._gateway, self._datasets = gateway, datasets

    def of(
        self, credential: Credential | None, ref: ProjectRef, project_id: int, name: str, git_ref: str | None
    ) -> History:
        """NotFound when no dataset has that name at the ref."""
        page = self._datasets.at_ref(credential, ref, git_ref)
        dataset = next((d for d in page.datasets if d.name == name), None)
        if dataset is None:
            raise NotFound(f"No dataset {name!r} at {page.ref}")
        lock = lock_source(dataset.source)
        if lock is None:
            commits = self._gateway.commits(
                credential, project_id, ref=page.ref, path=dataset.source, limit=MAX_COMMITS
            )
            entries = [HistoryEntry(c) for c in commits]
            return History(name, page.ref, dataset.source, entries, len(commits) >= MAX_COMMITS)
        commits = self._gateway.commits(credential, project_id, ref=page.ref, path=lock, limit=MAX_COMMITS)
        entries, truncated = lock_changes(
            commits, lambda sha: self._gateway.raw_file(credential, project_id, lock, sha), lock, name
        )
        return History(name, page.ref, lock, entries, truncated or len(commits) >= MAX_COMMITS)
