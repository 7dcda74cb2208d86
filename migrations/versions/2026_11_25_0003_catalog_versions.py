"""catalog versions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:39:38.635974
"""

import sqlalchemy as sa
from alembic import op

import points.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Adopted and retired catalog versions are immutable: entries reference their rule rows, so an
# edit would silently change what old points were worth. The domain refuses such edits; these
# triggers make the database refuse them too. On SQLite a later batch migration of these tables
# rebuilds them and drops their triggers: such a migration must create them again.
FROZEN_RULE = "catalog_rules of an adopted or retired catalog version are immutable"
FROZEN_VERSION = "an adopted or retired catalog version is immutable"
# Every column of catalog_versions except status and effective_to: adopted -> retired may only
# change those two.
VERSION_COLUMNS = (
    "id", "village_id", "scheme_id", "number", "title", "adopted_on", "adopted_by_body", "note",
    "effective_from", "created_at", "created_by", "adopted_by",
)


def create_catalog_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION catalog_rules_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' AND EXISTS (SELECT 1 FROM catalog_versions v
                        WHERE v.id = OLD.version_id AND v.status <> 'draft') THEN
                    RAISE EXCEPTION '{FROZEN_RULE}' USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF TG_OP <> 'DELETE' AND EXISTS (SELECT 1 FROM catalog_versions v
                        WHERE v.id = NEW.version_id AND v.status <> 'draft') THEN
                    RAISE EXCEPTION '{FROZEN_RULE}' USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF TG_OP = 'DELETE' THEN
                    RETURN OLD;
                END IF;
                RETURN NEW;
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER catalog_rules_frozen BEFORE INSERT OR UPDATE OR DELETE "
            "ON catalog_rules FOR EACH ROW EXECUTE FUNCTION catalog_rules_frozen()"
        )
        same = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in VERSION_COLUMNS)
        op.execute(
            f"""
            CREATE FUNCTION catalog_versions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.status = 'draft' THEN
                    IF TG_OP = 'DELETE' THEN
                        RETURN OLD;
                    END IF;
                    RETURN NEW;
                END IF;
                IF TG_OP = 'UPDATE' AND OLD.status = 'adopted' AND NEW.status = 'retired'
                        AND {same} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION '{FROZEN_VERSION}' USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER catalog_versions_frozen BEFORE UPDATE OR DELETE "
            "ON catalog_versions FOR EACH ROW EXECUTE FUNCTION catalog_versions_frozen()"
        )
    else:
        frozen = "SELECT 1 FROM catalog_versions v WHERE v.status <> 'draft' AND v.id = "
        for action, when in (
            ("insert", f"EXISTS ({frozen}NEW.version_id)"),
            ("update", f"EXISTS ({frozen}OLD.version_id) OR EXISTS ({frozen}NEW.version_id)"),
            ("delete", f"EXISTS ({frozen}OLD.version_id)"),
        ):
            op.execute(
                f"CREATE TRIGGER catalog_rules_frozen_{action} BEFORE {action.upper()} "
                f"ON catalog_rules WHEN {when} "
                f"BEGIN SELECT RAISE(ABORT, '{FROZEN_RULE}'); END"
            )
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in VERSION_COLUMNS)
        op.execute(
            "CREATE TRIGGER catalog_versions_frozen_update BEFORE UPDATE ON catalog_versions "
            "WHEN OLD.status <> 'draft' AND NOT (OLD.status = 'adopted' "
            f"AND NEW.status = 'retired' AND {same}) "
            f"BEGIN SELECT RAISE(ABORT, '{FROZEN_VERSION}'); END"
        )
        op.execute(
            "CREATE TRIGGER catalog_versions_frozen_delete BEFORE DELETE ON catalog_versions "
            f"WHEN OLD.status <> 'draft' BEGIN SELECT RAISE(ABORT, '{FROZEN_VERSION}'); END"
        )


def drop_catalog_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER catalog_rules_frozen ON catalog_rules")
        op.execute("DROP FUNCTION catalog_rules_frozen()")
        op.execute("DROP TRIGGER catalog_versions_frozen ON catalog_versions")
        op.execute("DROP FUNCTION catalog_versions_frozen()")
    else:
        for action in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER catalog_rules_frozen_{action}")
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER catalog_versions_frozen_{action}")


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('catalog_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('scheme_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('adopted_on', sa.Date(), nullable=True),
    sa.Column('adopted_by_body', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=True),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('created_at', points.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('adopted_by', sa.Integer(), nullable=True),
    sa.CheckConstraint("status = 'draft' OR (adopted_on IS NOT NULL AND effective_from IS NOT NULL)", name=op.f('ck_catalog_versions_adopted_has_dates')),
    sa.CheckConstraint("status IN ('draft', 'adopted', 'retired')", name=op.f('ck_catalog_versions_status_known')),
    sa.CheckConstraint('number >= 1', name=op.f('ck_catalog_versions_number_positive')),
    sa.ForeignKeyConstraint(['adopted_by'], ['users.id'], name=op.f('fk_catalog_versions_adopted_by_users')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_catalog_versions_created_by_users')),
    sa.ForeignKeyConstraint(['scheme_id'], ['schemes.id'], name=op.f('fk_catalog_versions_scheme_id_schemes')),
    sa.ForeignKeyConstraint(['village_id'], ['villages.id'], name=op.f('fk_catalog_versions_village_id_villages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_versions')),
    sa.UniqueConstraint('scheme_id', 'number', name=op.f('uq_catalog_versions_scheme_id_number'))
    )
    with op.batch_alter_table('catalog_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_versions_village_id'), ['village_id'], unique=False)
        batch_op.create_index('uq_catalog_versions_one_adopted', ['scheme_id'], unique=True, sqlite_where=sa.text("status = 'adopted'"), postgresql_where=sa.text("status = 'adopted'"))

    op.create_table('catalog_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('subcategory', sa.String(length=50), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('sign', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=True),
    sa.Column('min_points', sa.Integer(), nullable=True),
    sa.Column('max_points', sa.Integer(), nullable=True),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('caps', sa.JSON(), nullable=False),
    sa.Column('evidence_required', sa.Boolean(), nullable=False),
    sa.Column('review', sa.String(length=16), nullable=False),
    sa.Column('review_threshold', sa.Integer(), nullable=True),
    sa.Column('recorder_roles', sa.JSON(), nullable=False),
    sa.Column('subjects', sa.JSON(), nullable=False),
    sa.Column('honourable', sa.Boolean(), nullable=False),
    sa.CheckConstraint('sign IN (1, -1)', name=op.f('ck_catalog_rules_sign_known')),
    sa.ForeignKeyConstraint(['version_id'], ['catalog_versions.id'], name=op.f('fk_catalog_rules_version_id_catalog_versions')),
    sa.ForeignKeyConstraint(['village_id'], ['villages.id'], name=op.f('fk_catalog_rules_village_id_villages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_rules')),
    sa.UniqueConstraint('version_id', 'code', name=op.f('uq_catalog_rules_version_id_code'))
    )
    with op.batch_alter_table('catalog_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_rules_village_id'), ['village_id'], unique=False)

    # ### end Alembic commands ###
    create_catalog_guards()


def downgrade() -> None:
    drop_catalog_guards()
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('catalog_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_rules_village_id'))

    op.drop_table('catalog_rules')
    with op.batch_alter_table('catalog_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_catalog_versions_one_adopted', sqlite_where=sa.text("status = 'adopted'"), postgresql_where=sa.text("status = 'adopted'"))
        batch_op.drop_index(batch_op.f('ix_catalog_versions_village_id'))

    op.drop_table('catalog_versions')
    # ### end Alembic commands ###
