"""An index on claims.batch_id

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 01:30:00

A batch's claims are found by `batch_id`: the ids of a batch just inserted (every batch
record), the other claims of a grouped batch under review or objection, and a batch's
siblings when its notice ends. Without an index each of these read the whole claims table,
so a batch record cost more the more claims the database held (issue 18's linear-cost rule).
Partial (batch claims only): a single record, the hot path, has no batch and does not pay for
the index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index(
            "ix_claims_batch_id",
            ["batch_id"],
            sqlite_where=sa.text("batch_id IS NOT NULL"),
            postgresql_where=sa.text("batch_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index("ix_claims_batch_id")
