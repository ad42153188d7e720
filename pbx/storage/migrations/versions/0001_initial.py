"""Initial schema: agents, registrations, cdr.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here (not imported from models.py): a migration is a snapshot in time.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("ha1_md5", sa.String(32), nullable=False),
        sa.Column("ha1_sha256", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("extension", name="uq_agents_extension"),
    )
    op.create_table(
        "registrations",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("aor", sa.String(255), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("cseq", sa.BigInteger(), nullable=False),
        sa.Column("q", sa.Float(), nullable=False),
        sa.Column("source_transport", sa.String(8), nullable=False),
        sa.Column("source_host", sa.String(64), nullable=False),
        sa.Column("source_port", sa.Integer(), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=False),
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("reg_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registrations"),
    )
    op.create_index("ix_registrations_aor", "registrations", ["aor"])
    op.create_table(
        "cdr",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("callee", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("hangup_cause", sa.Text(), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("did", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cdr"),
    )
    op.create_index("ix_cdr_call_id", "cdr", ["call_id"])
    op.create_index("ix_cdr_started_at", "cdr", ["started_at"])
    op.create_index("ix_cdr_agent", "cdr", ["agent"])


def downgrade() -> None:
    op.drop_table("cdr")
    op.drop_table("registrations")
    op.drop_table("agents")
