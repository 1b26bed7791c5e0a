"""Sign-in with GitLab: sign-ins in progress and signed-in browser sessions; a project's objects indexed
by md5 and by age (a dataset's completeness, the last upload: O(log n) instead of the project's rows).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_ins",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("nonce_hash", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("return_to", sa.String(2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sign_ins_created_at", "sign_ins", ["created_at"])
    op.create_table(
        "browser_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_browser_sessions_expires_at", "browser_sessions", ["expires_at"])
    op.create_index("ix_objects_project_md5", "objects", ["project_id", "md5"])
    op.create_index("ix_objects_project_created", "objects", ["project_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_objects_project_created", "objects")
    op.drop_index("ix_objects_project_md5", "objects")
    op.drop_index("ix_browser_sessions_expires_at", "browser_sessions")
    op.drop_table("browser_sessions")
    op.drop_index("ix_sign_ins_created_at", "sign_ins")
    op.drop_table("sign_ins")
