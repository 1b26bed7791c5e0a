"""WebDAV locks (RFC 4918 class 2) for the mounts that need them (macOS Finder, Windows Explorer): LOCK,
refresh, UNLOCK, and the check every write makes: its If header's conditions (412 when they fail) and,
on a locked resource, one of the lock's tokens submitted (423 otherwise)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.auth import Authorizer
from app.db.dav_locks import DavLockStore
from app.db.index import ObjectIndex
from app.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    RegistryError,
)
from app.model.identity import Action, Credential, Grant
from app.model.locks import DavLock, IfHeader
from app.model.paths import ObjectPath
from app.model.projects import ProjectRef
from app.uploads import Uploads

MAX_TIMEOUT = 3600  # seconds: a client asking for more (or Infinite) gets this; it refreshes as needed


class Locked(RegistryError):
    """423: the resource is locked and the request did not submit the lock's token."""

    status, code = 423, "locked"


def granted_timeout(header: str | None, cap: int = MAX_TIMEOUT) -> int:
    """The seconds a `Timeout: Second-N, Infinite` header gets: its first usable value, capped."""
    for part in (header or "").split(","):
        value = part.strip().lower()
        if value == "infinite":
            return cap
        if value.startswith("second-") and value[7:].isdigit():
            return max(1, min(int(value[7:]), cap))
    return cap


class Locks:
    """Takes, refreshes and releases locks for callers GitLab lets write, and checks writes against them."""

    def __init__(
        self, *, authorizer: Authorizer, index: ObjectIndex, store: DavLockStore, uploads: Uploads
    ) -> None:
        self._authorizer = authorizer
        self._index = index
        self._store = store
        self._uploads = uploads

    def lock(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        *,
        exclusive: bool,
        infinite: bool,
        owner: str,
        timeout: int,
    ) -> tuple[DavLock, bool]:
        """A new lock on path; True when path was unmapped and an empty object was made there (RFC 4918
        7.3: Finder LOCKs a new file before its PUT). 423 when it meets a lock it cannot share."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        if path:
            ObjectPath(path)
        lock = DavLock(
            token=f"opaquelocktoken:{uuid.uuid4()}",
            project_id=grant.project.id,
            path=path,
            exclusive=exclusive,
            infinite=infinite,
            owner=owner,
            principal=_principal(credential, grant),
            timeout=timeout,
            expires_at=datetime.now(UTC) + timedelta(seconds=timeout),
        )

        def refuse(met: list[DavLock]) -> RegistryError | None:
            clash = next((other for other in met if other.conflicts(exclusive)), None)
            return None if clash is None else Locked(f"{path or '/'} is locked ({_scope(clash)} lock)")

        self._store.take(lock, grant.project.path, refuse)
        created = False
        if path and not self._mapped(grant, path):
            try:
                self._uploads.upload(credential, ref, path, [b""])
            except BaseException:
                self._store.release(lock.token)
                raise
            created = True
        return lock, created

    def _mapped(self, grant: Grant, path: str) -> bool:
        project_id = grant.project.id
        if self._index.get(project_id, path) is not None:
            return True
        return self._index.dav.is_collection(project_id, path) or self._index.has_prefix(
            project_id, f"{path}/"
        )

    def refresh(
        self, credential: Credential | None, ref: ProjectRef, path: str, conditions: IfHeader, timeout: int
    ) -> DavLock:
        """LOCK without a body: restart the timeout of the lock whose token the If header names (412 when
        it names none that covers path)."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        for lock in self._store.find(conditions.tokens):
            if lock.project_id == grant.project.id and lock.covers(path):
                self._own(lock, credential, grant)
                expires = self._store.refresh(lock.token, timeout)
                return DavLock(**{**lock.__dict__, "timeout": timeout, "expires_at": expires})
        raise PreconditionFailed("No lock to refresh: the If header names no lock token of this resource")

    def unlock(self, credential: Credential | None, ref: ProjectRef, path: str, token: str) -> None:
        """Release the lock with that token (409 when no lock of path has it, 403 when another took it)."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        found = [lock for lock in self._store.find([token]) if lock.project_id == grant.project.id]
        if not found or not found[0].covers(path):
            raise Conflict(f"No lock of {path or '/'} has the token {token}")
        self._own(found[0], credential, grant)
        self._store.release(token)

    def _own(self, lock: DavLock, credential: Credential | None, grant: Grant) -> None:
        if lock.principal != _principal(credential, grant):
            raise PermissionDenied("This lock was taken by someone else; only they may refresh or release it")

    def locks_on(self, credential: Credential | None, ref: ProjectRef, path: str) -> list[DavLock]:
        """The locks that apply to path (lockdiscovery)."""
        grant = self._authorizer.authorize(credential, ref, Action.READ)
        return self._store.covering(grant.project.id, path)

    def check(
        self,
        credential: Credential | None,
        ref: ProjectRef,
        path: str,
        conditions: IfHeader,
        *,
        members: bool = False,
    ) -> None:
        """A write to path (members: and to everything under it, as DELETE and MOVE do) may go ahead:
        412 when the If header's conditions for path fail, 423 when a lock applies and none of its tokens
        was submitted. One index seek when the project holds no lock and the request no If header."""
        try:
            grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        except (AuthenticationRequired, PermissionDenied, NotFound):
            return  # who may not write may change nothing: the write itself refuses, with its own reason
        project_id = grant.project.id
        locks = self._store.covering(project_id, path, members=members)
        if conditions.lists and conditions.applies_to(path):
            info = self._index.get(project_id, path) if path else None
            tokens = {lock.token for lock in locks if lock.covers(path)}
            if not conditions.holds(path, tokens, info.etag if info else None):
                raise PreconditionFailed(
                    f"Precondition failed (If): the conditions do not hold for {path or '/'}"
                )
        submitted = conditions.tokens
        by_path: dict[str, set[str]] = {}  # shared locks of one resource: any one of their tokens will do
        for lock in locks:
            by_path.setdefault(lock.path, set()).add(lock.token)
        for locked, tokens in sorted(by_path.items()):
            if not tokens & submitted:
                raise Locked(f"{locked or '/'} is locked: send its lock token in an If header")

    def release_under(self, credential: Credential | None, ref: ProjectRef, path: str) -> None:
        """Drop the locks of a path that has gone (a MOVE's source) and of everything under it."""
        grant = self._authorizer.authorize(credential, ref, Action.WRITE)
        for lock in self._store.covering(grant.project.id, path, members=True):
            if lock.path == path or lock.path.startswith(f"{path}/"):
                self._store.release(lock.token)


def _principal(credential: Credential | None, grant: Grant) -> str:
    """Who holds a lock: the GitLab user (any of their tokens), else the credential itself."""
    if grant.actor is not None and grant.actor.user_id is not None:
        return f"user:{grant.actor.user_id}"
    return "token:" + (credential.fingerprint[:32] if credential else "anonymous")


def _scope(lock: DavLock) -> str:
    return "an exclusive" if lock.exclusive else "a shared"
