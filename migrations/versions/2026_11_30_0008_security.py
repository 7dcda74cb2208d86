"""security: session epoch and sign-in lockout on users

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 11:55:00
"""

import sqlalchemy as sa
from alembic import op

import points.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('failed_signins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', points.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_signins')
        batch_op.drop_column('session_epoch')
