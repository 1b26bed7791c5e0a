"""The data-plane use cases (stat, download, upload, delete): authorisation, index and storage together."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from app.auth import Authorizer
from app.db.index import ObjectIndex
from app.errors import ChecksumMismatch, Conflict, ObjectNotFound
from app.model import (
    Action,
    Credential,
    Grant,
    ObjectInfo,
    ObjectPath,
    ProjectRef,
    SignedURL,
    object_key,
)
from app.storage.base import StorageBackend

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Download:
    """An object the caller may read, with a signed URL to fetch it from storage."""

    info: ObjectInfo
    url: SignedURL


@dataclass(frozen=True)
class Upload:
    """The outcome of an upload: the indexed object and whether it is new (201) or already there (200)."""

    info: ObjectInfo
    created: bool


class Registry:
    """Reads and writes objects of GitLab projects for callers GitLab vouches for."""

    def __init__(
        self,
        *,
        authorizer: Authorizer,
        index: ObjectIndex,
        storage: StorageBackend,
        signed_url_ttl: int,
    ) -> None:
        self._authorizer = authorizer
        self._index = index
        self._storage = storage
        self._ttl = signed_url_ttl

    def _lookup(self, grant: Grant, path: ObjectPath) -> ObjectInfo:
        info = self._index.get(grant.project.id, path.value)
        if info is None:
            raise ObjectNotFound(f"Object not found: {path}")
        return info

    def _readable(self, credential: Credential | None, ref: ProjectRef, path: str) -> tuple[ObjectInfo, str]:
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.READ)
        return self._lookup(grant, obj_path), object_key(grant.project.id, obj_path)

    def stat(self, credential: Credential | None, ref: ProjectRef, path: str) -> ObjectInfo:
        """The indexed object, or ObjectNotFound."""
        return self._readable(credential, ref, path)[0]

    def download(self, credential: Credential | None, ref: ProjectRef, path: str) -> Download:
        """The object and a signed URL valid for the configured TTL."""
        info, key = self._readable(credential, ref, path)
        return Download(info=info, url=self._storage.sign_download(key, ttl=self._ttl))

    def open(
        self, credential: Credential | None, ref: ProjectRef, path: str
    ) -> tuple[ObjectInfo, Callable[[int, int], Iterator[bytes]]]:
        """The object and a reader of its bytes [start, stop), streamed from storage through the app."""
        info, key = self._readable(credential, ref, path)
        return info, lambda start, stop: self._storage.read(key, start=start, end=stop)

    def upload(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        body: Iterable[bytes],
        *,
        overwrite: bool = False,
    ) -> Upload:
        """Stream a body into storage; it becomes visible only when complete and, if content-addressed,
        when its md5 matches the path."""
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        project = grant.project
        staged = self._storage.stage(object_key(project.id, obj_path), body)
        try:
            expected = obj_path.expected_md5
            if expected is not None and staged.md5 != expected:
                raise ChecksumMismatch(
                    f"Checksum mismatch: body md5 {staged.md5} does not match path {obj_path}"
                )
            with self._index.writing(project) as tx:
                existing = tx.get(obj_path.value)
                if existing is not None and existing.md5 == staged.md5:
                    self._storage.discard(staged)
                    return Upload(info=existing, created=False)
                if existing is not None and expected is None and not overwrite:
                    raise Conflict(
                        f"A different object exists at {obj_path}; add ?overwrite=true to replace it"
                    )
                self._storage.commit(staged)
                uploader = grant.actor.user_id if grant.actor else None
                info = tx.put(obj_path.value, size=staged.size, md5=staged.md5, uploader_id=uploader)
            return Upload(info=info, created=existing is None)
        finally:
            self._storage.discard(staged)

    def delete(self, credential: Credential | None, ref: ProjectRef, path: str) -> None:
        """Delete an object (Maintainer); refuse while a `.dir` manifest still lists it."""
        obj_path = ObjectPath(path)
        grant = self._authorizer.authorize(credential, ref, Action.DELETE)
        info = self._lookup(grant, obj_path)
        if obj_path.expected_md5 is not None and not obj_path.value.endswith(".dir"):
            self._refuse_if_listed(grant, obj_path, info.md5)
        with self._index.writing(grant.project) as tx:
            tx.remove(obj_path.value)
        self._storage.delete(object_key(grant.project.id, obj_path))

    def _refuse_if_listed(self, grant: Grant, path: ObjectPath, md5: str) -> None:
        remote_root = path.value[: path.value.rfind("/", 0, path.value.rfind("/")) + 1]
        if remote_root.endswith("files/md5/"):
            remote_root = remote_root[: -len("files/md5/")]
        for manifest in self._index.find(grant.project.id, prefix=remote_root, suffix=".dir"):
            if manifest.size > MAX_MANIFEST_BYTES:
                continue
            key = object_key(grant.project.id, ObjectPath(manifest.path))
            try:
                entries = json.loads(b"".join(self._storage.read(key)))
            except (ValueError, ObjectNotFound):
                continue
            if any(isinstance(e, dict) and e.get("md5") == md5 for e in entries):
                raise Conflict(f"{path} is listed in {manifest.path}; delete that .dir first")
