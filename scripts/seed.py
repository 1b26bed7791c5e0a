"""Fill a registry's storage and index with many objects fast, behind its back (tests of the worker and
the deletion benchmark): blobs through the storage backend (or plain files on local disk), index rows in
bulk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert

from app.db import build_engine
from app.db.models import Base
from app.db.sql import insert_if_absent
from app.settings import Settings
from app.storage import build_storage


def seed_project(
    settings: Settings, project_id: int, path: str, count: int, size: int = 64
) -> dict[str, str]:
    """`count` content-addressed objects of `size` random bytes in project `project_id`; returns their
    paths and md5s."""
    objects = {}
    bodies = {}
    for _ in range(count):
        body = os.urandom(size)
        md5 = hashlib.md5(body).hexdigest()
        object_path = f"files/md5/{md5[:2]}/{md5[2:]}"
        objects[object_path], bodies[object_path] = md5, body
    root = settings.local_storage_root
    if root is not None:
        for object_path, body in bodies.items():
            file = Path(root) / f"projects/{project_id}/{object_path}"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(body)
    else:
        storage = build_storage(settings)

        def put(item: tuple[str, bytes]) -> None:
            storage.commit(storage.stage(f"projects/{project_id}/{item[0]}", iter([item[1]])))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, bodies.items()))
    engine = build_engine(settings.effective_database_url)
    index_rows(engine, project_id, path, [(p, size, m) for p, m in objects.items()])
    engine.dispose()
    return objects


def index_rows(engine: Engine, project_id: int, path: str, objects: Sequence[tuple[str, int, str]]) -> None:
    """Index rows (path, size, md5) for a project in one transaction, in bulk, with its usage totals; no
    bytes are stored."""
    now = datetime.now(UTC)
    with engine.execution_options(writer=True).begin() as conn:
        project = {
            "id": project_id,
            "path": path,
            "state": "active",
            "used_bytes": 0,
            "object_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        insert_if_absent(conn, Base.metadata.tables["projects"], "id", project)
        rows = [
            {
                "project_id": project_id,
                "path": p,
                "size": size,
                "md5": m,
                "uploader_id": None,
                "created_at": now,
            }
            for p, size, m in objects
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Base.metadata.tables["objects"]), rows[start : start + 5000])
        projects = Base.metadata.tables["projects"]
        conn.execute(
            projects.update()
            .where(projects.c.id == project_id)
            .values(
                used_bytes=projects.c.used_bytes + sum(size for _, size, _ in objects),
                object_count=projects.c.object_count + len(objects),
            )
        )
