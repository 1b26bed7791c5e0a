"""Version keys: an object's bytes may live at a key of their own (a new version of a path that is not a
content address), so a write never changes bytes that the index may still point to.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("storage_key", sa.Text(), nullable=True))


def downgrade() -> None:
    versions = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM objects WHERE storage_key IS NOT NULL"))
    if versions.scalar():  # their bytes are at keys only this column names: dropping it would lose them
        raise RuntimeError("objects are stored under version keys: this downgrade would lose them; not done")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("storage_key")
