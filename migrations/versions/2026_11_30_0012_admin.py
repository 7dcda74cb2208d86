"""admin console: a resident's status (moved out, deceased) kept with the row; goods photos

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="active", nullable=False)
        )
        batch_op.add_column(sa.Column("left_on", sa.Date(), nullable=True))
    with op.batch_alter_table("goods", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("goods", schema=None) as batch_op:
        batch_op.drop_column("photo")
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_column("left_on")
        batch_op.drop_column("status")
