"""board entries keep their rule's category

Revision ID: 0019
Revises: 0017
Create Date: 2026-11-30 16:30:00

board_entries gains a nullable `category`: the category of a good deed's or a violation's rule,
written when the board is drafted, so the board groups them by the village's own categories and
a later catalog change cannot regroup a board already drafted or published. Rows drafted before
keep NULL and show under their section as before. Plain ADD COLUMN (no table rebuild).
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("board_entries", sa.Column("category", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("board_entries", "category")
