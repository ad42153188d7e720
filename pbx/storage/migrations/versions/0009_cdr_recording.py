"""CDR recording: the call's recording file (relative to data_dir/recordings) and when the
retention cleanup deleted it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("cdr") as batch:
        batch.add_column(sa.Column("recording", sa.Text(), nullable=False,
                                   server_default=sa.text("''")))
        batch.add_column(sa.Column("recording_expired_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cdr") as batch:
        batch.drop_column("recording_expired_at")
        batch.drop_column("recording")
