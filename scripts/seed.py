"""Fill a registry's storage and index with many objects fast, behind its back (tests of the worker and
the deletion benchmark): blobs through the storage backend (or plain files on local disk), index rows in
bulk."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

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
    now = datetime.now(UTC)
    engine = build_engine(settings.effective_database_url)
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
            for p, m in objects.items()
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Base.metadata.tables["objects"]), rows[start : start + 5000])
        projects = Base.metadata.tables["projects"]
        conn.execute(
            projects.update()
            .where(projects.c.id == project_id)
            .values(
                used_bytes=projects.c.used_bytes + size * count, object_count=projects.c.object_count + count
            )
        )
    engine.dispose()
    return objects
