"""Object versions: a path has at most one live row, and any number of trashed ones (the versions a PUT
replaced or a DELETE took), so the unique (project, path) constraint becomes a unique index over live rows
only, beside a plain index over every row of a path.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_LIVE = sa.text("trashed_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.drop_constraint("uq_objects_project_path", type_="unique")
        batch.create_index("ix_objects_project_path", ["project_id", "path"])
        batch.create_index(
            "uq_objects_live_path",
            ["project_id", "path"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )


def downgrade() -> None:
    versions = op.get_bind().execute(
        sa.text(
            "SELECT COUNT(*) FROM (SELECT 1 FROM objects GROUP BY project_id, path HAVING COUNT(*) > 1) v"
        )
    )
    if versions.scalar():  # one row per path would have to go, and with it the only record of its bytes
        raise RuntimeError("paths have several versions (replaced ones in the trash): not downgraded")
    with op.batch_alter_table("objects") as batch:
        batch.drop_index("uq_objects_live_path")
        batch.drop_index("ix_objects_project_path")
        batch.create_unique_constraint("uq_objects_project_path", ["project_id", "path"])
