"""The projects table's shared pieces: a row made on a project's first use, and rows read as
ProjectRecord values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from app.db.models import Base
from app.db.sql import insert_if_absent
from app.model.projects import ACTIVE, ProjectRecord

PROJECTS = Base.metadata.tables["projects"]
_P = PROJECTS.c
# The columns a ProjectRecord is read from, in its field order.
RECORD_COLUMNS = (
    _P.id,
    _P.path,
    _P.state,
    _P.quota_bytes,
    _P.used_bytes,
    _P.object_count,
    _P.trash_bytes,
    _P.trash_count,
)


def insert_project(conn: Connection, project_id: int, path: str | None) -> bool:
    """The project's row, active and empty, unless it exists; True when it was inserted."""
    now = datetime.now(UTC)
    row = {
        "id": project_id,
        "path": path or f"project {project_id}",
        "state": ACTIVE,
        "used_bytes": 0,
        "object_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    return insert_if_absent(conn, PROJECTS, "id", row)


def record(row: Any) -> ProjectRecord:
    """A row selected with RECORD_COLUMNS as a ProjectRecord."""
    project_id, path, state, own_quota, used, count, trash_bytes, trash_count = row
    return ProjectRecord(
        id=project_id,
        path=path,
        state=state,
        own_quota=own_quota,
        used_bytes=used,
        object_count=count,
        trash_bytes=trash_bytes,
        trash_count=trash_count,
    )
