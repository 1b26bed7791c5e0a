"""WebDAV LOCK and UNLOCK (class 2) for the mounts that need them (RFC 4918 9.10, 9.11)."""

from __future__ import annotations

from flask import Response

from app.errors import MethodNotAllowed
from app.model.projects import ProjectRef


def lock(ref: ProjectRef, path: str) -> Response:
    """LOCK: not built yet."""
    raise MethodNotAllowed("LOCK is not supported yet")


def unlock(ref: ProjectRef, path: str) -> Response:
    """UNLOCK: not built yet."""
    raise MethodNotAllowed("UNLOCK is not supported yet")
