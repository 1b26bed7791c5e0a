"""WebDAV use cases beside the object reads and writes: what is at a path (an object, a collection, or
nothing), collections made with MKCOL, dead properties (PROPPATCH) and client-given modification times.
No flask, no XML: the web layer parses and renders."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from app.auth import Authorizer
from app.db.dav import DeadProperty, Mtime
from app.db.index import ObjectIndex
from app.errors import AuthenticationRequired, Conflict, MethodNotAllowed, ObjectNotFound, ProjectNotFound
from app.model.identity import Action, Credential, Grant
from app.model.objects import ObjectInfo
from app.model.paths import ObjectPath
from app.model.projects import ProjectRef

VALUE_LIMIT = 64 * 1024  # characters of one dead property's value
RESOURCE_LIMIT = 1024 * 1024  # characters of all dead properties of one path
# The first folder DVC's webdav remote creates in a fresh remote; it never creates the remote's base URL
# itself (webdav4's makedirs stops at its root), so MKCOL of these makes the missing parents too.
_DVC_TOP_FOLDERS = frozenset({"files", "runs"})
# DVC's content-addressed fan-out (`files/md5/ab/`): its webdav remote lists the parent (PROPFIND Depth 1
# of `files/md5`) before each MKCOL of one, so listing them while still empty made a fresh remote's first
# push parse a listing growing to 256 folders, once per folder (~33,000 entries for 2,000 files: +26 %
# wall). Made and kept as any collection, one is listed in its parent once an object is in it.
_DVC_FAN_OUT = re.compile(r"(?:^|/)files/md5/[0-9a-f]{2}\Z")


class Entry(NamedTuple):
    """A resource in a PROPFIND answer: its path, the object (None: a collection), the modification time
    to list, and its dead properties (None: not asked for)."""

    path: str
    info: ObjectInfo | None
    modified: datetime | None
    properties: list[DeadProperty] | None


@dataclass(frozen=True)
class Found:
    """The resource at a path and, when asked and it is a collection, its members."""

    entry: Entry
    members: Iterator[Entry]


class PatchRefused(NamedTuple):
    """Why a PROPPATCH change could not be made: an HTTP status and a one-line reason."""

    status: int
    reason: str


def effective_mtime(info: ObjectInfo | None, given: Mtime | None) -> datetime | None:
    """The modification time a client gave, while it still applies (the same object version, or a
    collection); else the object's upload time (None for a collection without one)."""
    if given is not None:
        modified, version = given
        if (info is None and version is None) or (info is not None and version == info.created_at):
            return modified
    return info.created_at if info is not None else None


class Dav:
    """Reads and changes of WebDAV state for callers GitLab vouches for."""

    def __init__(self, *, authorizer: Authorizer, index: ObjectIndex) -> None:
        self._authorizer = authorizer
        self._index = index
        self._store = index.dav

    def grant(self, credential: Credential | None, ref: ProjectRef, action: Action) -> Grant:
        """The caller's grant for the action. Without a credential, a project GitLab does not show is
        401 with a challenge whether it exists or not (WebDAV clients send credentials only when
        challenged, and nothing tells a private project from a missing one); a token that cannot see
        the project gets 404, as everywhere."""
        try:
            return self._authorizer.authorize(credential, ref, action)
        except ProjectNotFound:
            if credential is None:
                raise AuthenticationRequired(f"Authentication required to read {ref}") from None
            raise

    def find(
        self, credential: Credential | None, ref: ProjectRef, path: str, *, members: bool, properties: bool
    ) -> Found:
        """The object or collection at path (404 when neither: not an object, nor a folder of objects,
        nor made with MKCOL; the data root always exists) and, with members, a collection's members."""
        grant = self.grant(credential, ref, Action.READ)
        project_id = grant.project.id
        self._index.require_active(grant.project)
        info = self._index.get(project_id, ObjectPath(path).value) if path else None
        if info is None and path and not self._is_collection(project_id, path):
            raise ObjectNotFound(f"Not found: {path}")
        given = self._store.mtime(project_id, path)
        props = self._store.properties(project_id, path) if properties else None
        entry = Entry(path, info, effective_mtime(info, given), props)
        listed = self._members(project_id, path, properties) if members and info is None else iter(())
        return Found(entry=entry, members=listed)

    def _is_collection(self, project_id: int, path: str) -> bool:
        if ObjectPath(path).content_address is not None:
            return False  # a DVC object path is never a folder: one look-up for DVC's existence checks
        return self._store.is_collection(project_id, path) or self._index.has_prefix(project_id, f"{path}/")

    def _members(self, project_id: int, path: str, properties: bool) -> Iterator[Entry]:
        """The collection's members in path order from the index (streamed), then the empty collections
        MKCOL made; mtimes and dead properties of the folder in one query each."""
        prefix = f"{path}/" if path else ""
        made = self._store.collections_in(project_id, path)
        given = self._store.mtimes_in(project_id, path)
        props = self._store.properties_in(project_id, path) if properties else {}
        empty = set(made)
        if not given and not props:  # the usual folder (all of DVC's): no per-member look-ups
            no_props: list[DeadProperty] | None = [] if properties else None
            for name, info in self._index.children(project_id, prefix):
                if info is None:
                    empty.discard(name)
                    yield Entry(prefix + name, None, None, no_props)
                else:
                    yield Entry(prefix + name, info, info.created_at, no_props)
        else:
            yield from self._members_with_state(
                prefix, self._index.children(project_id, prefix), given, props, properties, empty
            )
        for name in made:
            if name in empty and not (_DVC_FAN_OUT.search(prefix + name) and name not in given):
                yield Entry(
                    prefix + name,
                    None,
                    effective_mtime(None, given.get(name)),
                    props.get(name, []) if properties else None,
                )

    @staticmethod
    def _members_with_state(
        prefix: str,
        children: Iterator[tuple[str, ObjectInfo | None]],
        given: dict[str, Mtime],
        props: dict[str, list[DeadProperty]],
        properties: bool,
        empty: set[str],
    ) -> Iterator[Entry]:
        """The members of a folder where clients gave mtimes or dead properties."""
        for name, info in children:
            if info is None:
                empty.discard(name)
            mtime = given.get(name)
            modified = (
                (info.created_at if info is not None else None)
                if mtime is None
                else effective_mtime(info, mtime)
            )
            yield Entry(prefix + name, info, modified, props.get(name, []) if properties else None)

    def make_collection(self, credential: Credential | None, ref: ProjectRef, path: str) -> None:
        """MKCOL: keep a collection at path. 201 also when one is there (a deliberate deviation: DVC then
        skips a PROPFIND per upload); 405 where an object is; 409 under an object or when the parent is
        missing, except for DVC's first folders (`files`, `runs`), whose missing parents are made too."""
        grant = self.grant(credential, ref, Action.WRITE)
        if not path:
            return  # the data root always exists
        ObjectPath(path)
        project_id = grant.project.id
        if self._store.is_collection(project_id, path):
            return  # DVC's MKCOL before every upload: one look-up
        if self._index.get(project_id, path) is not None:
            raise MethodNotAllowed(f"An object exists at {path}; MKCOL makes collections only")
        if self._index.has_prefix(project_id, f"{path}/"):
            return
        missing = [path]
        parent = path.rpartition("/")[0]
        while parent and not self._is_collection(project_id, parent):
            if self._index.get(project_id, parent) is not None:
                raise Conflict(f"{parent} is an object, not a collection")
            if path.rpartition("/")[2] not in _DVC_TOP_FOLDERS:
                raise Conflict(f"Parent collection {parent} does not exist; create it first (MKCOL)")
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        self._store.make_collections(grant.project, reversed(missing))

    def patch(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        changes: Sequence[tuple[str, str, str | None]],
    ) -> PatchRefused | None:
        """PROPPATCH: set (value) or remove (None) dead properties of an existing path, all or nothing;
        the refusal when the path's properties would pass RESOURCE_LIMIT."""
        grant = self.grant(credential, ref, Action.WRITE)
        self._require(grant, path)
        if not changes:
            return None
        if self._store.patch(grant.project, path, changes, limit=RESOURCE_LIMIT):
            return None
        return PatchRefused(507, f"Properties of one resource are limited to {RESOURCE_LIMIT // 1024} KiB")

    def set_mtime(
        self, credential: Credential | None, ref: ProjectRef, path: str, modified: datetime
    ) -> None:
        """PROPPATCH getlastmodified (and its kin): the time listed for path until its object is replaced."""
        grant = self.grant(credential, ref, Action.WRITE)
        info = self._require(grant, path)
        self._store.set_mtime(grant.project.id, path, modified, info.created_at if info else None)

    def uploaded(self, info: ObjectInfo, oc_mtime: str | None, *, created: bool) -> bool:
        """After a PUT stored `info`: keep the `X-OC-Mtime` it carried (True: kept, answer `accepted`).
        Without one, a re-upload of the same bytes (the version stays) lists its upload time again; a new
        version does by itself."""
        if oc_mtime is not None:
            return self.remember_mtime(info, oc_mtime)
        if not created:
            self._store.remove(info.project_id, [info.path], under_too=False, mtimes_only=True)
        return False

    def remember_mtime(self, info: ObjectInfo, seconds: str) -> bool:
        """An upload's `X-OC-Mtime: <unix seconds>` (rclone's owncloud/nextcloud vendors), kept for the
        version just stored; False (nothing kept) when it is no number of seconds."""
        try:
            value = float(seconds.strip())
            modified = datetime.fromtimestamp(value, UTC)
        except (ValueError, OverflowError, OSError):
            return False
        if value < 0:
            return False
        self._store.set_mtime(info.project_id, info.path, modified, info.created_at)
        return True

    def _require(self, grant: Grant, path: str) -> ObjectInfo | None:
        """The object at path (None: a collection); 404 when nothing is there."""
        self._index.require_active(grant.project)
        info = self._index.get(grant.project.id, ObjectPath(path).value) if path else None
        if info is None and path and not self._is_collection(grant.project.id, path):
            raise ObjectNotFound(f"Not found: {path}")
        return info
