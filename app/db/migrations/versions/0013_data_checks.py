"""Data checks of commits (DESIGN 3.12): one row per project and commit, the status last posted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_checks",
        sa.Column("project_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("sha", sa.String(length=64), primary_key=True),
        sa.Column("ref", sa.String(length=1024), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("rechecks", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_ref", sa.String(length=1024), nullable=True),
        sa.Column("posted_state", sa.String(length=16), nullable=True),
        sa.Column("posted_description", sa.String(length=255), nullable=True),
    )
    op.create_index("ix_data_checks_due_at", "data_checks", ["due_at"])
    op.create_index("ix_data_checks_posted_state", "data_checks", ["posted_state"])


def downgrade() -> None:
    op.drop_index("ix_data_checks_posted_state", table_name="data_checks")
    op.drop_index("ix_data_checks_due_at", table_name="data_checks")
    op.drop_table("data_checks")
