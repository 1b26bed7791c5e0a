"""A project's datasets by the names its Git repository gives them: every `*.dvc` file and `dvc.lock`
output at a ref, where this registry keeps them (the `.dvc/config` remote that points here), whether all
their objects are here, and a directory dataset's files from its `.dir` manifest."""

from __future__ import annotations

import configparser
import json
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

from app.auth import Authorizer
from app.cache import TTLCache
from app.db.index import ObjectIndex
from app.errors import ObjectNotFound
from app.gitlab.gateway import GitLabGateway, RepositoryRefs
from app.manifests import MAX_MANIFEST_BYTES
from app.model.identity import Action, Credential
from app.model.projects import Project, ProjectRef
from app.storage.base import StorageBackend

_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_DATA_PATH = re.compile(r"^/(?:-/projects/(?P<id>\d+)/data|(?P<path>.+?)/-/data)(?:/(?P<prefix>.*))?$")


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

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")

    @property
    def state(self) -> str:
        if self.object_path is None:
            return "not pushed"
        return "complete" if not self.missing else f"{self.missing:,} missing"


@dataclass(frozen=True)
class DatasetPage:
    ref: str
    refs: RepositoryRefs
    remote: str | None  # the DVC remote that points at this project, and its prefix here
    prefix: str | None
    datasets: list[Dataset]


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
    """(remote name, prefix here) of the `.dvc/config` remote whose URL is this project's data URL (the
    default remote first), or (None, None)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(config.decode("utf-8", errors="replace"))
    except configparser.Error:
        return None, None
    default = parser.get("core", "remote", fallback=None)
    remotes = {  # DVC writes the section as ['remote "name"'] (configobj), quotes included
        section.strip("'").split('"')[1]: parser.get(section, "url", fallback="")
        for section in parser.sections()
        if section.strip("'").startswith("remote ") and section.count('"') == 2
    }
    for name in sorted(remotes, key=lambda n: n != default):
        match = _DATA_PATH.match(urlsplit(remotes[name]).path)
        if match is None:
            continue
        ours = match["id"] == str(project.id) or (match["path"] or "").lower() == project.path.lower()
        if ours:
            return name, (match["prefix"] or "").strip("/")
    return None, None


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
    """Datasets at a ref, and a directory dataset's files; answers cached per caller, project and ref."""

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
        self._pages: TTLCache[DatasetPage] = TTLCache(max_size=2_000)
        self._manifests: TTLCache[list[tuple[str, str]]] = TTLCache(max_size=200)

    def at_ref(self, credential: Credential | None, ref: ProjectRef, git_ref: str | None) -> DatasetPage:
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        key = (credential.fingerprint if credential else None, project.id, git_ref)
        found, _ = self._pages.load(key, lambda: (self._read(credential, project, git_ref), self._ttl))
        return found

    def _read(self, credential: Credential | None, project: Project, git_ref: str | None) -> DatasetPage:
        refs = self._gateway.repository_refs(credential, project.id)
        at = git_ref or refs.default or "main"
        files = self._gateway.repository_files(credential, project.id, at)
        config = (
            self._gateway.raw_file(credential, project.id, ".dvc/config", at)
            if ".dvc/config" in files
            else None
        )
        remote, prefix = remote_prefix(config, project) if config else (None, None)
        named: list[tuple[str, str, dict[str, object]]] = []
        for path in files:
            if path.endswith(".dvc") or path.rpartition("/")[2] == "dvc.lock":
                if path.startswith(".dvc/"):
                    continue
                content = self._gateway.raw_file(credential, project.id, path, at)
                named += outputs(path, content or b"")
        datasets = [self._dataset(project, prefix, name, source, out) for name, source, out in sorted(named)]
        return DatasetPage(ref=at, refs=refs, remote=remote, prefix=prefix, datasets=datasets)

    def _locate(self, project: Project, prefix: str, md5: str) -> str | None:
        for dvc3 in (True, False):
            candidate = object_path(prefix, md5, dvc3=dvc3)
            if self._index.get(project.id, candidate) is not None:
                return candidate
        return None

    def _dataset(
        self, project: Project, prefix: str | None, name: str, source: str, out: dict[str, object]
    ) -> Dataset:
        md5, size, nfiles = str(out["md5"]), out.get("size"), out.get("nfiles")
        where = self._locate(project, prefix, md5) if prefix is not None else None
        missing = 1
        if where is not None:
            if md5.endswith(".dir"):
                listed = {m for _, m in self._manifest(project, where)}
                missing = len(listed - self._index.present_md5s(project.id, sorted(listed)))
            else:
                missing = 0
        return Dataset(
            name,
            source,
            md5,
            size if isinstance(size, int) else None,
            nfiles if isinstance(nfiles, int) else None,
            where,
            missing,
        )

    def _manifest(self, project: Project, path: str) -> list[tuple[str, str]]:
        """(relpath, md5) of each file a `.dir` manifest lists, sorted by relpath."""

        def read() -> tuple[list[tuple[str, str]], float]:
            info = self._index.get(project.id, path)
            if info is None or info.size > MAX_MANIFEST_BYTES:
                return [], self._ttl
            raw = b"".join(self._storage.read(info.key))
            try:
                entries = json.loads(raw)
            except (ValueError, RecursionError):
                return [], self._ttl
            listed = (
                [
                    (str(e["relpath"]), str(e["md5"]))
                    for e in entries
                    if isinstance(e, dict)
                    and isinstance(e.get("relpath"), str)
                    and isinstance(e.get("md5"), str)
                ]
                if isinstance(entries, list)
                else []
            )
            return sorted(listed), self._ttl

        found, _ = self._manifests.load((project.id, path), read)
        return found

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
        project = self._authorizer.authorize(credential, ref, Action.READ).project
        self._index.require_active(project)
        if not manifest.endswith(".dir") or self._index.get(project.id, manifest) is None:
            raise ObjectNotFound(f"Object not found: {manifest}")
        slashed = f"/{manifest}"
        dvc3 = "/files/md5/" in slashed
        base = slashed.rsplit("/files/md5/", 1)[0] if dvc3 else posixpath.dirname(posixpath.dirname(slashed))
        base = base.strip("/")
        inside = f"{folder.strip('/')}/" if folder.strip("/") else ""
        folders: set[str] = set()
        direct: list[tuple[str, str]] = []
        for relpath, md5 in self._manifest(project, manifest):
            if not relpath.startswith(inside):
                continue
            rest = relpath[len(inside) :]
            if "/" in rest:
                folders.add(rest.split("/", 1)[0])
            else:
                direct.append((relpath, md5))
        page = []
        for relpath, md5 in direct[offset : offset + limit]:
            where = object_path(base, md5, dvc3=dvc3)
            info = self._index.get(project.id, where)
            page.append(DatasetFile(relpath, md5, where if info else None, info.size if info else None))
        return sorted(folders), page, len(direct)
