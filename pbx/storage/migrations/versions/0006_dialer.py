"""Outbound dialer: contact state per campaign, every attempt, the do-not-call list.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaign_contacts",
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("customer_no", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_result", sa.String(32), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("result_counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "customer_no", name="pk_campaign_contacts"),
    )
    op.create_index("ix_campaign_contacts_state", "campaign_contacts", ["state"])
    op.create_table(
        "dialer_attempts",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("customer_no", sa.String(64), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("call", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dialer_attempts"),
    )
    op.create_index("ix_dialer_attempts_campaign", "dialer_attempts", ["campaign"])
    op.create_index("ix_dialer_attempts_customer_no", "dialer_attempts", ["customer_no"])
    op.create_table(
        "dnc",
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("phone", name="pk_dnc"),
    )


def downgrade() -> None:
    op.drop_table("dnc")
    op.drop_index("ix_dialer_attempts_customer_no", table_name="dialer_attempts")
    op.drop_index("ix_dialer_attempts_campaign", table_name="dialer_attempts")
    op.drop_table("dialer_attempts")
    op.drop_index("ix_campaign_contacts_state", table_name="campaign_contacts")
    op.drop_table("campaign_contacts")
