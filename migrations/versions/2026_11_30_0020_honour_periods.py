"""honour_lists.period: a 星级文明户 list per scoring period

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 16:30:00

A household scheme whose honour rules say `household_cadence: period` gets one 星级文明户 list
per closed scoring period; `period` is that period's key ('2025-Q3') and '' for yearly lists
(every list stored before). The live-list index now includes it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

LIVE = "status IN ('draft', 'approved', 'published')"


def upgrade() -> None:
    with op.batch_alter_table("honour_lists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("period", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.drop_index(
            "uq_honour_lists_live", sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE)
        )
        batch_op.create_index(
            "uq_honour_lists_live",
            ["village_id", "kind", "year", "period"],
            unique=True,
            sqlite_where=sa.text(LIVE),
            postgresql_where=sa.text(LIVE),
        )


def downgrade() -> None:
    # With two live per-period lists of one year the old index cannot be rebuilt: the downgrade
    # then fails whole rather than delete published honours.
    with op.batch_alter_table("honour_lists", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_honour_lists_live", sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE)
        )
        batch_op.create_index(
            "uq_honour_lists_live",
            ["village_id", "kind", "year"],
            unique=True,
            sqlite_where=sa.text(LIVE),
            postgresql_where=sa.text(LIVE),
        )
        batch_op.drop_column("period")
