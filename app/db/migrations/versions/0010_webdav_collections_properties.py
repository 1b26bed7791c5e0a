"""WebDAV state: collections made with MKCOL, dead properties set with PROPPATCH, and the modification
times clients give (X-OC-Mtime, PROPPATCH getlastmodified), each by (project, path) with its parent
collection for listings.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PATH = sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql")


def _keys() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "project_id", sa.BigInteger(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("path", PATH, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "dav_collections",
        *_keys(),
        sa.Column("parent", PATH, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "path"),
    )
    op.create_table(
        "dav_properties",
        *_keys(),
        sa.Column("namespace", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("parent", PATH, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "path", "namespace", "name"),
    )
    op.create_table(
        "dav_mtimes",
        *_keys(),
        sa.Column("parent", PATH, nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("project_id", "path"),
    )
    for table in ("dav_collections", "dav_properties", "dav_mtimes"):
        op.create_index(f"ix_{table}_parent", table, ["project_id", "parent"])


def downgrade() -> None:
    for table in ("dav_mtimes", "dav_properties", "dav_collections"):
        op.drop_index(f"ix_{table}_parent", table_name=table)
        op.drop_table(table)
