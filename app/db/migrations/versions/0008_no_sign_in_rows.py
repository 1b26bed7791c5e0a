"""Sign-ins in progress live in a signed cookie: the `sign_ins` table (a row per anonymous sign-in, which
anyone could grow) goes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sign_ins_created_at", table_name="sign_ins")
    op.drop_table("sign_ins")


def downgrade() -> None:
    op.create_table(
        "sign_ins",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("nonce_hash", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("return_to", sa.String(2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sign_ins_created_at", "sign_ins", ["created_at"])
