"""Customer directory: customers with their phone numbers, groups and pinned agents.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out here (not imported from models.py): a migration is a snapshot in time.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _child(name: str, column: sa.Column[str]) -> None:
    # A list belonging to a customer, kept in order; gone with the customer.
    op.create_table(
        name,
        sa.Column("customer_id", _BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        column,
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=f"fk_{name}_customer_id_customers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "position", name=f"pk_{name}"),
    )


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("customer_no", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
        sa.UniqueConstraint("customer_no", name="uq_customers_customer_no"),
    )
    _child("customer_phones", sa.Column("phone", sa.String(32), nullable=False))
    op.create_index("ix_customer_phones_phone", "customer_phones", ["phone"])
    _child("customer_groups", sa.Column("group_name", sa.String(64), nullable=False))
    op.create_index("ix_customer_groups_group_name", "customer_groups", ["group_name"])
    _child("customer_pinned_agents", sa.Column("extension", sa.String(32), nullable=False))


def downgrade() -> None:
    op.drop_table("customer_pinned_agents")
    op.drop_table("customer_groups")
    op.drop_table("customer_phones")
    op.drop_table("customers")
