"""WebDAV COPY and MOVE within a project, server-side (a bucket copy; RFC 4918 9.8, 9.9)."""

from __future__ import annotations

from flask import Response

from app.errors import MethodNotAllowed
from app.model.projects import ProjectRef


def copy(ref: ProjectRef, path: str) -> Response:
    """COPY: not built yet."""
    raise MethodNotAllowed("COPY is not supported yet")


def move(ref: ProjectRef, path: str) -> Response:
    """MOVE: not built yet."""
    raise MethodNotAllowed("MOVE is not supported yet")
