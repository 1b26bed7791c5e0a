"""Multipart uploads through the S3 door: an upload session of kind `s3` and the parts it holds.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_sessions") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="direct"))
    op.create_table(
        "upload_parts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(length=32),
            sa.ForeignKey("upload_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_upload_parts_session_number", "upload_parts", ["session_id", "number"])


def downgrade() -> None:
    op.drop_index("ix_upload_parts_session_number", table_name="upload_parts")
    op.drop_table("upload_parts")
    with op.batch_alter_table("upload_sessions") as batch:
        batch.drop_column("kind")
