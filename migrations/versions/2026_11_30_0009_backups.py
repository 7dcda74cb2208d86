"""backups and village moves

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 12:00:00
"""

import sqlalchemy as sa
from alembic import op

import points.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The id map of a moved village is what verify hashes its imported entries through: like the
# ledger, it is append-only, and the database refuses an edit (docs/decisions/0010).
APPEND_ONLY = ("moved_ids", "village_moves")


def upgrade() -> None:
    op.create_table('backups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('taken_at', points.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('slot', sa.String(length=40), nullable=True),
    sa.Column('location', sa.String(length=500), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('heads', sa.JSON(), nullable=False),
    sa.Column('pruned_at', points.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backups')),
    sa.UniqueConstraint('slot', name=op.f('uq_backups_slot'))
    )
    op.create_table('village_moves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('moved_at', points.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('through_seq', sa.Integer(), nullable=False),
    sa.Column('through_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['village_id'], ['villages.id'], name=op.f('fk_village_moves_village_id_villages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_village_moves'))
    )
    with op.batch_alter_table('village_moves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_village_moves_village_id'), ['village_id'], unique=False)
    op.create_table('moved_ids',
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('new_id', sa.Integer(), nullable=False),
    sa.Column('old_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['village_id'], ['villages.id'], name=op.f('fk_moved_ids_village_id_villages')),
    sa.PrimaryKeyConstraint('village_id', 'kind', 'new_id', name=op.f('pk_moved_ids')),
    sa.UniqueConstraint('village_id', 'kind', 'old_id', name=op.f('uq_moved_ids_village_id_kind_old_id'))
    )
    if op.get_bind().dialect.name == "postgresql":
        # ledger_append_only() was created by 0001.
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_append_only_{action.lower()} BEFORE {action} "
                    f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    else:
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_append_only_{action}")
    op.drop_table('moved_ids')
    with op.batch_alter_table('village_moves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_village_moves_village_id'))
    op.drop_table('village_moves')
    op.drop_table('backups')
