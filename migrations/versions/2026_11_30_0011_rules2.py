"""rules engine 2: once-only, notice days, repeats, veto, automatic rules, campaigns, groups

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 12:00:00

catalog_rules gains plain nullable columns (ADD COLUMN, no table rebuild: on SQLite a rebuild
would drop the frozen-catalog triggers of 0003). claims gains `rule_note`, and `recorded_by`
becomes nullable for claims the scheduler creates (a batch rebuild on SQLite; claims carry no
triggers).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

RULE_COLUMNS = (
    ("once", sa.Boolean()),
    ("notice_days", sa.Integer()),
    ("repeat_window", sa.String(length=8)),
    ("repeat_multiplier", sa.Integer()),
    ("repeat_points", sa.Integer()),
    ("veto", sa.String(length=8)),
    ("auto", sa.String(length=8)),
    ("auto_months", sa.Integer()),
    ("auto_min_count", sa.Integer()),
    ("auto_watch", sa.JSON()),
    ("campaign_name", sa.String(length=100)),
    ("campaign_from", sa.Date()),
    ("campaign_to", sa.Date()),
    ("campaign_multiplier", sa.Integer()),
)


def upgrade() -> None:
    for name, type_ in RULE_COLUMNS:
        op.add_column("catalog_rules", sa.Column(name, type_, nullable=True))
    op.add_column("claim_batches", sa.Column("grouped", sa.Boolean(), nullable=True))
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_note", sa.Text(), nullable=True))
        batch_op.alter_column("recorded_by", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.alter_column("recorded_by", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("rule_note")
    op.drop_column("claim_batches", "grouped")
    for name, _ in reversed(RULE_COLUMNS):
        op.drop_column("catalog_rules", name)
