"""CTI: desktop credentials and sessions, and the audit trail of form saves.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here (not imported from models.py): a migration is a snapshot in time.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cti_credentials",
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("extension", name="pk_cti_credentials"),
    )
    op.create_table(
        "cti_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("extension", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("csrf_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_cti_sessions"),
    )
    op.create_index("ix_cti_sessions_extension", "cti_sessions", ["extension"])
    op.create_index("ix_cti_sessions_expires_at", "cti_sessions", ["expires_at"])
    op.create_table(
        "form_audit",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("customer_no", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_form_audit"),
    )
    op.create_index("ix_form_audit_customer_no", "form_audit", ["customer_no"])
    op.create_index("ix_form_audit_call_id", "form_audit", ["call_id"])


def downgrade() -> None:
    op.drop_table("form_audit")
    op.drop_table("cti_sessions")
    op.drop_table("cti_credentials")
