"""The queue log: every enqueue, offer, no-answer, answer, abandon, overflow, pause/unpause and
wrap-up, with timestamps (reporting and audits).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "queue_log",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("call", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_queue_log"),
    )
    op.create_index("ix_queue_log_at", "queue_log", ["at"])
    op.create_index("ix_queue_log_queue", "queue_log", ["queue"])


def downgrade() -> None:
    op.drop_index("ix_queue_log_queue", table_name="queue_log")
    op.drop_index("ix_queue_log_at", table_name="queue_log")
    op.drop_table("queue_log")
