"""WebDAV locks (LOCK/UNLOCK, RFC 4918 class 2), shared by every worker and replica.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PATH = sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dav_locks",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.Column("infinite", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dav_locks_project_path", "dav_locks", ["project_id", "path"])
    op.create_index("ix_dav_locks_expires_at", "dav_locks", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dav_locks_expires_at", table_name="dav_locks")
    op.drop_index("ix_dav_locks_project_path", table_name="dav_locks")
    op.drop_table("dav_locks")
