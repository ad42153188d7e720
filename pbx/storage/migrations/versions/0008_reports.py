"""Records and reports: the agent's disposition and notes with the CDR; queue and agent
statistics in 15-minute intervals that survive a restart.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("cdr") as batch:
        batch.add_column(sa.Column("agent_disposition", sa.String(64), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("agent_notes", sa.Text(), nullable=False,
                                   server_default=""))
    op.create_table(
        "queue_intervals",
        sa.Column("interval_start", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        sa.Column("overflowed", sa.Integer(), nullable=False),
        sa.Column("answered_in_sl", sa.Integer(), nullable=False),
        sa.Column("wait_answered_s", sa.Float(), nullable=False),
        sa.Column("wait_abandoned_s", sa.Float(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.Column("handle_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("interval_start", "queue", name="pk_queue_intervals"),
    )
    op.create_table(
        "agent_intervals",
        sa.Column("interval_start", sa.BigInteger(), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.Column("handle_s", sa.Float(), nullable=False),
        sa.Column("talk_s", sa.Float(), nullable=False),
        sa.Column("wrap_up_s", sa.Float(), nullable=False),
        sa.Column("ready_s", sa.Float(), nullable=False),
        sa.Column("ringing_s", sa.Float(), nullable=False),
        sa.Column("reserved_s", sa.Float(), nullable=False),
        sa.Column("paused_s", sa.Float(), nullable=False),
        sa.Column("direct_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("interval_start", "agent", name="pk_agent_intervals"),
    )
    op.create_table(
        "agent_pause_intervals",
        sa.Column("interval_start", sa.BigInteger(), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("paused_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("interval_start", "agent", "reason",
                                name="pk_agent_pause_intervals"),
    )


def downgrade() -> None:
    op.drop_table("agent_pause_intervals")
    op.drop_table("agent_intervals")
    op.drop_table("queue_intervals")
    with op.batch_alter_table("cdr") as batch:
        batch.drop_column("agent_notes")
        batch.drop_column("agent_disposition")
