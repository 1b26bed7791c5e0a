"""A project's datasets by the names its Git repository gives them: every `*.dvc` file and `dvc.lock`
output at a ref, where this registry keeps them (the `.dvc/config` remote that points here), whether all
their objects are here, and a directory dataset's files from its `.dir` manifest."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

import yaml

from app.auth import Authorizer
from app.cache import TTLCache
from app.dataset_tree import ManifestTree
from app.db.index import ObjectIndex
from app.dvc_config import Remote, our_remote
from app.errors import GitLabUnavailable, NotFound, ObjectNotFound, PermissionDenied
from app.gitlab.gateway import GitLabGateway, RepositoryRefs
from app.manifests import MAX_MANIFEST_BYTES
from app.model.identity import Action, Credential
from app.model.objects import Listing
from app.model.paths import ObjectPath, object_key
from app.model.projects import Project, ProjectRef
from app.storage.base import StorageBackend

_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_MANIFEST_TTL = 3600.0  # seconds a parsed manifest stays cached: its bytes never change
TRASHED_MANIFESTS = 20  # the newest manifests in the trash that name trashed files


@dataclass(frozen=True)
class Dataset:
    """One DVC output named in the repository."""

    name: str  # its path in the repository
    source: str  # the .dvc file, or dvc.lock and the stage
    md5: str
    size: int | None
    nfiles: int | None
    object_path: str | None  # where its object (a directory's .dir manifest) is here; None: not here
    missing: int  # files of it not here (for a file: 1 when absent)
    trash_path: str | None = None  # where its object is in the trash, when it is not here

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")

    @property
    def state(self) -> str:
        if self.object_path is None:
            return "in the trash" if self.trash_path else "not pushed"
        return "complete" if not self.missing else f"{self.missing:,} missing"


@dataclass(frozen=True)
class DatasetPage:
    ref: str
    refs: RepositoryRefs
    remote: str | None  # the DVC remote that points at this project, and its prefix here
    prefix: str | None
    datasets: list[Dataset]
    remote_detail: Remote | None = None  # that remote as `.dvc/config` gives it (kind, URL, default)


@dataclass(frozen=True)
class _Repository:
    """What the repository says at a ref: its refs, the remote here and the outputs its files name."""

    ref: str
    refs: RepositoryRefs
    remote: str | None
    prefix: str | None
    named: list[tuple[str, str, dict[str, object]]]
    remote_detail: Remote | None


@dataclass(frozen=True)
class DatasetFile:
    """A file a directory dataset lists."""

    relpath: str
    md5: str
    object_path: str | None  # None: not here
    size: int | None


def object_path(prefix: str, md5: str, *, dvc3: bool) -> str:
    """Where DVC puts a content address under a remote prefix: `files/md5/ab/cdef…` (DVC 3) or `ab/cdef…`."""
    tail = f"{md5[:2]}/{md5[2:]}"
    return posixpath.join(prefix, "files/md5", tail) if dvc3 else posixpath.join(prefix, tail)


def remote_prefix(config: bytes, project: Project) -> tuple[str | None, str | None]:
    """(remote name, prefix here) of the `.dvc/config` remote that points at this project (an http or
    webdav remote to its data URL, an s3 remote to its S3 door; the default remote first), or (None, None)."""
    remote = our_remote(config, project.path, project.id)
    return (remote.name, remote.prefix) if remote is not None else (None, None)


def outputs(path: str, content: bytes) -> list[tuple[str, str, dict[str, object]]]:
    """(name, source, out) of each output a `.dvc` file or a `dvc.lock` names, paths from the repo root."""
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError:
        return []
    if not isinstance(document, dict):
        return []
    base = posixpath.dirname(path)
    found: list[tuple[str, str, dict[str, object]]] = []
    if path.rpartition("/")[2] == "dvc.lock":
        stages = document.get("stages")
        for stage, spec in stages.items() if isinstance(stages, dict) else []:
            for out in _listed(spec.get("outs") if isinstance(spec, dict) else None):
                found.append(
                    (posixpath.normpath(posixpath.join(base, str(out["path"]))), f"{path}: {stage}", out)
                )
    else:
        for out in _listed(document.get("outs")):
            found.append((posixpath.normpath(posixpath.join(base, str(out["path"]))), path, out))
    return [(name, source, out) for name, source, out in found if _MD5.match(str(out.get("md5", "")))]


def _listed(outs: object) -> list[dict[str, object]]:
    """The well-formed entries of an `outs:` list (a dict with a string path)."""
    if not isinstance(outs, list):
        return []
    return [out for out in outs if isinstance(out, dict) and isinstance(out.get("path"), str)]


class Datasets:
    """Datasets at a ref, and a directory dataset's files. What the repository says is cached per caller,
    project and ref; where the objects are (here, in the trash) is looked up on each page; a manifest is
    parsed once and cached by its md5."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        gateway: GitLabGateway,
        index: ObjectIndex,
        storage: StorageBackend,
        cache_ttl: float,
    ) -> None:
        self._authorizer, self._gateway = authorizer, gateway
        self._index, self._storage, self._ttl = index, storage, cache_ttl
        self._repos: TTLCache[_Repository] = TTLCache(max_size=2_000)
        self._trees: TTLCache[ManifestTree] = TTLCache(max_size=200)
        self._missing: TTLCache[tuple[int]] = TTLCache(max_size=2_000)

    def at_ref(self, credential: Credential | None, ref: ProjectRef, git_ref: str | None) -> DatasetPage:
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        key = (credential.fingerprint if credential else None, project.id, git_ref)
        repo, hit = self._repos.load(key, lambda: (self._read(credential, project, git_ref), self._ttl))
        if not hit and git_ref is None:  # the default branch by its name too: the page's links name it
            self._repos.put((*key[:2], repo.ref), repo, self._ttl)
        datasets = [
            self._dataset(project, repo.prefix, name, source, out) for name, source, out in repo.named
        ]
        return DatasetPage(
            ref=repo.ref,
            refs=repo.refs,
            remote=repo.remote,
            prefix=repo.prefix,
            datasets=datasets,
            remote_detail=repo.remote_detail,
        )

    def _read(self, credential: Credential | None, project: Project, git_ref: str | None) -> _Repository:
        refs = self._gateway.repository_refs(credential, project.id)
        at = git_ref or refs.default or "main"
        files = self._gateway.repository_files(credential, project.id, at)
        config = (
            self._gateway.raw_file(credential, project.id, ".dvc/config", at)
            if ".dvc/config" in files
            else None
        )
        ours = our_remote(config, project.path, project.id) if config else None
        named: list[tuple[str, str, dict[str, object]]] = []
        for path in files:
            if path.endswith(".dvc") or path.rpartition("/")[2] == "dvc.lock":
                if path.startswith(".dvc/"):
                    continue
                content = self._gateway.raw_file(credential, project.id, path, at)
                named += outputs(path, content or b"")
        if ours is None:
            return _Repository(at, refs, None, None, sorted(named), None)
        return _Repository(at, refs, ours.name, ours.prefix, sorted(named), ours)

    def _locate(self, project: Project, prefix: str, md5: str) -> tuple[str | None, str | None]:
        """(where the object is here, where it is in the trash): one of them or neither."""
        candidates = [object_path(prefix, md5, dvc3=dvc3) for dvc3 in (True, False)]
        for candidate in candidates:
            if self._index.get(project.id, candidate) is not None:
                return candidate, None
        for candidate in candidates:
            if self._index.trashed_size(project.id, candidate) is not None:
                return None, candidate
        return None, None

    def _dataset(
        self, project: Project, prefix: str | None, name: str, source: str, out: dict[str, object]
    ) -> Dataset:
        md5, size, nfiles = str(out["md5"]), out.get("size"), out.get("nfiles")
        where, trashed = self._locate(project, prefix, md5) if prefix is not None else (None, None)
        missing = 1
        if where is not None:
            missing = self._missing_files(project, where) if md5.endswith(".dir") else 0
        return Dataset(
            name,
            source,
            md5,
            size if isinstance(size, int) else None,
            nfiles if isinstance(nfiles, int) else None,
            where,
            missing,
            trashed,
        )

    def _missing_files(self, project: Project, manifest: str) -> int:
        """How many of the files a manifest lists have no object here (cached for the page's time)."""

        def count() -> tuple[tuple[int], float]:
            listed = set(self._tree(project, manifest).by_md5)
            return (len(listed - self._index.present_md5s(project.id, sorted(listed))),), self._ttl

        found, _ = self._missing.load((project.id, manifest), count)
        return found[0]

    def _tree(self, project: Project, path: str) -> ManifestTree:
        """The tree of the `.dir` manifest at path, here or in the trash (empty when neither or too big);
        parsed once per md5 (a content address's bytes never change)."""

        def read() -> tuple[ManifestTree, float]:
            info = self._index.get(project.id, path)
            size = info.size if info is not None else self._index.trashed_size(project.id, path)
            if size is None or size > MAX_MANIFEST_BYTES:
                return ManifestTree([]), self._ttl  # not (yet) here: looked for again soon
            raw = b"".join(self._storage.read(object_key(project.id, ObjectPath(path))))
            return ManifestTree.parse(raw), _MANIFEST_TTL

        address = ObjectPath(path).content_address
        key = (project.id, address.md5 if address and address.is_dir else path)
        found, _ = self._trees.load(key, read)
        return found

    def _manifest(self, project: Project, path: str) -> list[tuple[str, str]]:
        """(relpath, md5) of each file a `.dir` manifest lists, sorted by relpath."""
        return self._tree(project, path).entries

    def manifest(self, credential: Credential | None, ref: ProjectRef, path: str) -> list[tuple[str, str]]:
        """(relpath, md5) of each file the `.dir` manifest at `path` lists, sorted (for comparisons)."""
        return self._manifest(self._authorizer.authorize(credential, ref, Action.READ).project, path)

    def _opened(
        self, credential: Credential | None, ref: ProjectRef, manifest: str
    ) -> tuple[Project, ManifestTree]:
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        if not manifest.endswith(".dir") or self._index.get(project.id, manifest) is None:
            raise ObjectNotFound(f"Object not found: {manifest}")
        return project, self._tree(project, manifest)

    def files(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        manifest: str,
        folder: str,
        *,
        offset: int,
        limit: int,
    ) -> tuple[list[str], list[DatasetFile], int]:
        """The sub-folders and a page of the files directly in `folder` of a directory dataset (its `.dir`
        manifest at `manifest`), and how many files the folder has."""
        project, tree = self._opened(credential, ref, manifest)
        listed, total = tree.files_in(folder, offset, limit)
        return tree.subfolders(folder), self._located(project, manifest, listed), total

    def search(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        manifest: str,
        text: str,
        *,
        offset: int,
        limit: int,
    ) -> tuple[list[DatasetFile], int]:
        """A page of a directory dataset's files, anywhere in it, whose path contains `text`, and how many."""
        project, tree = self._opened(credential, ref, manifest)
        listed, total = tree.search(text, offset, limit)
        return self._located(project, manifest, listed), total

    def _located(self, project: Project, manifest: str, listed: list[tuple[str, str]]) -> list[DatasetFile]:
        """The files with where each is here (the manifest's remote and layout), None when absent."""
        address = ObjectPath(manifest).content_address
        found = []
        for relpath, md5 in listed:
            where = address.sibling(md5) if address else None
            info = self._index.get(project.id, where) if where else None
            found.append(DatasetFile(relpath, md5, where if info else None, info.size if info else None))
        return found

    def names(self, credential: Credential | None, ref: ProjectRef, paths: list[str]) -> dict[str, str]:
        """The names people know for content addresses of the project (a page of its trash): a dataset's
        own object gets the dataset's name at the default branch, a file a `.dir` manifest lists (one of
        those datasets', or one in the trash) `dataset/relpath`. Bounded: the default branch's datasets
        and the newest TRASHED_MANIFESTS manifests in the trash, each parsed once."""
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        try:
            datasets = self.at_ref(credential, ref, None).datasets
        except (PermissionDenied, NotFound, GitLabUnavailable):
            datasets = []  # no repository to read: the manifests still name files
        manifests: dict[str, str] = {}  # manifest path -> its dataset's name ("" unknown)
        known: dict[str, str] = {}  # md5 (.dir included) -> dataset name
        for d in datasets:
            known.setdefault(d.md5, d.name)
            if d.is_dir and (d.object_path or d.trash_path):
                manifests[d.object_path or d.trash_path or ""] = d.name
        newest = Listing(
            search=".dir", limit=TRASHED_MANIFESTS, order_by="created_at", descending=True, trashed=True
        )
        for info in self._index.page(project.id, newest):
            address = ObjectPath(info.path).content_address
            if address and address.is_dir:
                manifests.setdefault(info.path, known.get(address.md5 + ".dir", ""))
        names: dict[str, str] = {}
        for path in paths:
            address = ObjectPath(path).content_address
            if address is None:
                continue
            if address.md5 + (".dir" if address.is_dir else "") in known:
                names[path] = known[address.md5 + (".dir" if address.is_dir else "")]
                continue
            for manifest, dataset in manifests.items():
                listed = ObjectPath(manifest).content_address
                relpath = self._tree(project, manifest).by_md5.get(address.md5) if listed else None
                if listed and relpath and listed.prefix == address.prefix:
                    names[path] = f"{dataset}/{relpath}" if dataset else relpath
                    break
        return names
