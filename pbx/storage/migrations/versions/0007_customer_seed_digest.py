"""Customers: the digest of the configuration seed a record was last written from.

The YAML seed inserts customers that are missing and updates only records nobody has changed
since the seed wrote them (their digest still matches); records edited on the desk, over the
API or by an import keep their edits (`pbx.storage.customers.SqlCustomerDirectory.seed`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("seed_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("seed_digest")
