"""performance: the indexes the county-scale plans need

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 12:00:00

verify sums postings per village and account; boards, the town summary and stars read one
village's or one scheme's month or period; a period close finds a scheme's lots of a period;
the scheduler finds claims whose notice ended. Each was a full scan before.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_postings_village_account", "postings", ["village_id", "account_id", "amount"]),
    ("ix_journal_entries_village_month", "journal_entries", ["village_id", "month"]),
    ("ix_journal_entries_scheme_month", "journal_entries", ["scheme_id", "month"]),
    ("ix_journal_entries_scheme_period", "journal_entries", ["scheme_id", "period_key"]),
    ("ix_accounts_scheme_lots", "accounts", ["scheme_id", "kind", "period_key"]),
    ("ix_claims_status_notice", "claims", ["status", "notice_until"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
