"""What a data check finds in one commit (DESIGN 3.12): the `*.dvc` files and `dvc.lock` outputs it names,
read through GitLab's repository API at that sha, against the objects this registry holds, and the
commit status that says so. No flask, no SDK: the gateway, the index and the storage Protocol."""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from app.datasets import object_path, outputs, remote_prefix
from app.db.index import ObjectIndex
from app.errors import NotFound
from app.gitlab.gateway import GitLabGateway
from app.manifests import MAX_MANIFEST_BYTES
from app.model.commits import CommitInfo, CommitState
from app.model.identity import Credential
from app.model.projects import Project, ProjectRef
from app.storage.base import StorageBackend

STATUS_NAME = "data-registry"
PENDING = "Checking that the data this commit names is in the registry"
MAX_DVC_FILES = 1_000  # .dvc files and dvc.lock files one check reads
READ_BUDGET = 60.0  # seconds one check may spend reading the repository
_DESCRIBED = 200  # characters of the per-dataset list in a failed status (GitLab keeps 255)


@dataclass(frozen=True)
class Finding:
    """One dataset of the commit: how many files it has (None: unknown) and how many are not here."""

    label: str  # the .dvc file, or "<output> in <dvc.lock>"
    files: int | None
    missing: int
    pushed: bool = True  # its object (a directory's .dir listing) is here: `missing` counts file by file


@dataclass(frozen=True)
class Verdict:
    """The status a check posts."""

    state: CommitState
    description: str
    target_url: str | None


@dataclass(frozen=True)
class CommitData:
    """A commit of a repository whose DVC remote is this registry: what the check reads next."""

    project: Project
    commit: CommitInfo
    prefix: str  # where the remote's objects are in the project's data
    tracked: list[str]  # its .dvc and dvc.lock files
    target_url: str | None


def _files(n: int) -> str:
    return f"{n:,} file" if n == 1 else f"{n:,} files"


def describe(findings: list[Finding]) -> tuple[CommitState, str]:
    """`success` with the counts, or `failed` naming each incomplete dataset and what it misses."""
    if not findings:
        return "success", "No DVC-tracked data in this commit"
    incomplete = [f for f in findings if f.missing]
    if not incomplete:
        total = sum(f.files or 0 for f in findings)
        datasets = "1 dataset" if len(findings) == 1 else f"{len(findings):,} datasets"
        return "success", f"{datasets}, {_files(total)}, all in the registry"
    said: list[str] = []
    for finding in incomplete:
        if finding.pushed and finding.files is not None:
            phrase = f"{finding.label}: {finding.missing:,} of {_files(finding.files)} missing"
        elif finding.files is not None:
            phrase = f"{finding.label}: not pushed ({_files(finding.files)})"
        else:
            phrase = f"{finding.label}: not pushed"
        if said and len("; ".join([*said, phrase])) > _DESCRIBED:
            said.append(f"{len(incomplete) - len(said):,} more datasets")
            break
        said.append(phrase)
    return "failed", "; ".join(said) + " — run dvc push"


def _manifest_md5s(raw: bytes) -> list[str] | None:
    """The md5 of each file a `.dir` manifest lists (one per file), None when it is no manifest."""
    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entries, list):
        return None
    return [str(e["md5"]) for e in entries if isinstance(e, dict) and isinstance(e.get("md5"), str)]


class DataChecker:
    """Reads a commit's DVC files through GitLab and counts what of their data is not here."""

    def __init__(
        self,
        *,
        gateway: GitLabGateway,
        index: ObjectIndex,
        storage: StorageBackend,
        public_url: str | None,
        max_dvc_files: int = MAX_DVC_FILES,
        budget: float = READ_BUDGET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway, self._index, self._storage = gateway, index, storage
        self._public_url, self._max, self._budget, self._clock = public_url, max_dvc_files, budget, clock

    def open(self, credential: Credential, project_id: int, sha: str) -> CommitData | None:
        """The commit, when its `.dvc/config` names a remote in this registry; None otherwise (nothing
        to check). NotFound when GitLab has no such commit."""
        commit = self._gateway.commit(credential, project_id, sha)
        if commit is None:
            raise NotFound(f"GitLab has no commit {sha} in project {project_id}")
        project = self._gateway.project(credential, ProjectRef(id=project_id))
        files = self._gateway.repository_files(credential, project_id, sha)
        if ".dvc/config" not in files:
            return None
        config = self._gateway.raw_file(credential, project_id, ".dvc/config", sha) or b""
        prefix = remote_prefix(config, project)[1]
        if prefix is None:
            return None
        tracked = [
            p
            for p in files
            if (p.endswith(".dvc") or posixpath.basename(p) == "dvc.lock") and not p.startswith(".dvc/")
        ]
        return CommitData(project, commit, prefix, tracked, self._target_url(project, commit))

    def verdict(self, credential: Credential, data: CommitData) -> Verdict:
        """Read the commit's DVC files and say whether every object they name is here."""
        started, count = self._clock(), len(data.tracked)
        if count > self._max:
            reason = f"{count:,} .dvc and dvc.lock files, more than the {self._max:,} a check reads"
            return Verdict("skipped", f"Not checked: {reason}", data.target_url)
        named: list[tuple[str, str, dict[str, object]]] = []
        for path in sorted(data.tracked):
            if self._clock() - started > self._budget:
                reason = f"reading {count:,} DVC files took longer than {self._budget:,.0f} s"
                return Verdict("skipped", f"Not checked: {reason}", data.target_url)
            content = self._gateway.raw_file(credential, data.project.id, path, data.commit.id)
            named += outputs(path, content or b"")
        findings = [self._finding(data, name, source, out) for name, source, out in named]
        state, description = describe(findings)
        return Verdict(state, description, data.target_url)

    def _finding(self, data: CommitData, name: str, source: str, out: dict[str, object]) -> Finding:
        md5, nfiles = str(out["md5"]), out.get("nfiles")
        label = source if source.endswith(".dvc") else f"{name} in {source.split(':')[0]}"
        where = self._locate(data.project.id, data.prefix, md5)
        if not md5.endswith(".dir"):
            return Finding(label, 1, 0) if where else Finding(label, 1, 1, pushed=False)
        if where is None:  # DVC pushes the listing last: whatever files came, the push did not finish
            files = nfiles if isinstance(nfiles, int) and nfiles > 0 else None
            return Finding(label, files, files or 1, pushed=False)
        info = self._index.get(data.project.id, where)
        if info is None or info.size > MAX_MANIFEST_BYTES:  # too large to list: its presence must do
            return Finding(label, nfiles if isinstance(nfiles, int) else 0, 0)
        listed = _manifest_md5s(b"".join(self._storage.read(info.key))) or []
        present = self._index.present_md5s(data.project.id, sorted(set(listed)))
        return Finding(label, len(listed), sum(1 for m in listed if m not in present))

    def _locate(self, project_id: int, prefix: str, md5: str) -> str | None:
        for dvc3 in (True, False):
            candidate = object_path(prefix, md5, dvc3=dvc3)
            if self._index.get(project_id, candidate) is not None:
                return candidate
        return None

    def _target_url(self, project: Project, commit: CommitInfo) -> str | None:
        """The registry's page for the commit: its comparison with its parent, or the commit itself."""
        if not self._public_url:
            return None
        page = f"{self._public_url}/{quote(project.path)}/-/data/"
        return f"{page}?compare={commit.parent}...{commit.id}" if commit.parent else f"{page}?ref={commit.id}"
