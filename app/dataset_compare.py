"""What changed between two refs of a repository's datasets: per dataset the files added, removed and
changed (from the two `.dir` manifests; a single-file dataset is one file), and the datasets added or
removed. The diff is pure and linear; `Comparisons` gathers its inputs (both refs' datasets, their
manifests through `Datasets`, sizes from the index for the rows shown)."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

from app.datasets import Dataset, Datasets
from app.db.index import ObjectIndex
from app.errors import BadRequest, NotFound
from app.gitlab.gateway import GitLabGateway
from app.model.identity import Credential
from app.model.paths import ObjectPath
from app.model.projects import ProjectRef

Kind = Literal["added", "removed", "changed"]
Status = Literal["added", "removed", "changed", "unchanged", "unknown"]
MAX_REF = 255


@dataclass(frozen=True)
class FileChange:
    """One file that differs: its path in the dataset and its md5 before and after (None: absent)."""

    relpath: str
    kind: Kind
    md5_before: str | None
    md5_after: str | None


@dataclass(frozen=True)
class ManifestDiff:
    """The files two manifests disagree on, sorted by path, and how many of each kind."""

    added: int
    removed: int
    changed: int
    unchanged: int
    rows: list[FileChange]


@dataclass(frozen=True)
class DatasetChange:
    """One dataset named at either ref; `diff` is None when a manifest is not in this registry."""

    name: str
    status: Status
    before: Dataset | None
    after: Dataset | None
    diff: ManifestDiff | None
    problem: str | None = None


@dataclass(frozen=True)
class Comparison:
    before: str
    after: str
    changes: list[DatasetChange]

    @property
    def changed(self) -> list[DatasetChange]:
        """The datasets that differ (unknown ones too: they may)."""
        return [c for c in self.changes if c.status != "unchanged"]

    def find(self, name: str) -> DatasetChange | None:
        return next((c for c in self.changes if c.name == name), None)


@dataclass(frozen=True)
class FileRow:
    """A row of a comparison page: the change and the sizes before and after (None: unknown)."""

    change: FileChange
    size_before: int | None
    size_after: int | None


def parse_range(text: str) -> tuple[str, str]:
    """`<from>...<to>` (or `<from>..<to>`) → the two refs; BadRequest otherwise."""
    before, sep, after = text.partition("...")
    if not sep:
        before, sep, after = text.partition("..")
    before, after = before.strip(), after.strip()
    if not sep or not before or not after:
        raise BadRequest(f"compare needs two refs: ?compare=<from>...<to>, got {text[:80]!r}")
    for ref in (before, after):
        if len(ref) > MAX_REF or any(c in ref for c in "\x00\n\r\t "):
            raise BadRequest(f"Not a Git ref: {ref[:80]!r}")
    return before, after


def diff_manifests(before: Sequence[tuple[str, str]], after: Sequence[tuple[str, str]]) -> ManifestDiff:
    """The difference of two manifests' (relpath, md5) lists, in any order: two dicts, key-set differences
    and one comprehension in C-speed loops; objects are made only for the files that differ."""
    old, new = dict(before), dict(after)
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    changed = sorted(relpath for relpath, md5 in new.items() if old.get(relpath, md5) != md5)
    rows = [FileChange(p, "added", None, new[p]) for p in added]
    rows += [FileChange(p, "removed", old[p], None) for p in removed]
    rows += [FileChange(p, "changed", old[p], new[p]) for p in changed]
    rows.sort(key=attrgetter("relpath"))
    unchanged = len(new) - len(added) - len(changed)
    return ManifestDiff(len(added), len(removed), len(changed), unchanged, rows)


def _status(before: Dataset | None, after: Dataset | None) -> Status:
    if before is None:
        return "added"
    if after is None:
        return "removed"
    return "unchanged" if before.md5 == after.md5 else "changed"


class Comparisons:
    """Compare two refs of a project's datasets. The caller has read the project (`project_id`); the
    datasets and manifests are read with the caller's credential (read permission, as the datasets page)."""

    def __init__(self, *, gateway: GitLabGateway, datasets: Datasets, index: ObjectIndex) -> None:
        self._gateway, self._datasets, self._index = gateway, datasets, index

    def compare(
        self, credential: Credential | None, ref: ProjectRef, project_id: int, before: str, after: str
    ) -> Comparison:
        """Every dataset at either ref and what changed in it; NotFound for a ref the repository lacks."""
        for git_ref in (before, after):
            if self._gateway.commit(credential, project_id, git_ref) is None:
                raise NotFound(f"No branch, tag or commit {git_ref!r} in this repository")
        old = {d.name: d for d in self._datasets.at_ref(credential, ref, before).datasets}
        new = {d.name: d for d in self._datasets.at_ref(credential, ref, after).datasets}
        changes = [self._change(credential, ref, n, old.get(n), new.get(n)) for n in sorted({*old, *new})]
        return Comparison(before, after, changes)

    def _change(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        name: str,
        before: Dataset | None,
        after: Dataset | None,
    ) -> DatasetChange:
        if before is not None and after is not None and before.md5 == after.md5:
            return DatasetChange(
                name, "unchanged", before, after, ManifestDiff(0, 0, 0, after.nfiles or 1, [])
            )
        status = _status(before, after)
        absent = next(
            (d for d in (before, after) if d is not None and d.is_dir and d.object_path is None), None
        )
        if absent is not None:  # its files are unknown: nothing to compare them with
            problem = f"the .dir manifest {absent.md5} is not in this registry (not pushed)"
            return DatasetChange(
                name, "unknown" if status == "changed" else status, before, after, None, problem
            )
        old, new = (self._entries(credential, ref, name, d) for d in (before, after))
        return DatasetChange(name, status, before, after, diff_manifests(old, new))

    def _entries(
        self, credential: Credential | None, ref: ProjectRef, name: str, dataset: Dataset | None
    ) -> list[tuple[str, str]]:
        """(relpath, md5) of a dataset's files ([] when absent at that ref, or its manifest not here)."""
        if dataset is None:
            return []
        if not dataset.is_dir:
            return [(posixpath.basename(name), dataset.md5)]
        if dataset.object_path is None:
            return []
        return self._datasets.manifest(credential, ref, dataset.object_path)

    def rows(self, project_id: int, change: DatasetChange, *, offset: int, limit: int) -> list[FileRow]:
        """A page of a dataset's changed files with their sizes (index lookups for this page only)."""
        rows = change.diff.rows[offset : offset + limit] if change.diff else []
        return [
            FileRow(
                row,
                self._size(project_id, change.before, row.md5_before),
                self._size(project_id, change.after, row.md5_after),
            )
            for row in rows
        ]

    def _size(self, project_id: int, dataset: Dataset | None, md5: str | None) -> int | None:
        if dataset is None or md5 is None:
            return None
        if not dataset.is_dir:
            return dataset.size
        address = ObjectPath(dataset.object_path).content_address if dataset.object_path else None
        info = self._index.get(project_id, address.sibling(md5)) if address else None
        return info.size if info else None
