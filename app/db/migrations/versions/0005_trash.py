"""The trash: objects deleted but kept for REGISTRY_TRASH_RETENTION, and each project's trash totals.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_objects_trashed_at", ["trashed_at"])
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("trash_bytes", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("trash_count", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("trash_count")
        batch.drop_column("trash_bytes")
    with op.batch_alter_table("objects") as batch:
        batch.drop_index("ix_objects_trashed_at")
        batch.drop_column("trashed_at")
