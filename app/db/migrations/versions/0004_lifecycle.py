"""Lifecycle: the deletion queue and reconciler state on projects, handled hook deliveries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("deletion_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deletion_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("deletion_claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_objects", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("missing_since", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "hook_deliveries",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hook_deliveries_received_at", "hook_deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_table("hook_deliveries")
    with op.batch_alter_table("projects") as batch:
        for column in (
            "missing_since",
            "deleted_objects",
            "deletion_claimed_until",
            "deletion_reason",
            "deletion_requested_at",
        ):
            batch.drop_column(column)
