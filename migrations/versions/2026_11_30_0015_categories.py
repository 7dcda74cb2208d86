"""categories as catalog data; scheme and village settings effective from a stated date

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 15:30:00

catalog_versions gains a nullable `categories` (plain ADD COLUMN, no table rebuild: on SQLite a
rebuild would drop the frozen-catalog triggers of 0003). Existing versions keep NULL, which reads
as the four default categories 德治/自治/法治/党建 — adopted versions cannot be updated, and
NULL says exactly what they were adopted with. `setting_changes` keeps every dated change of a
scheme's or a village's settings.
"""

import sqlalchemy as sa
from alembic import op

from points.db import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


# The frozen-version guard of 0003 compares every column but status and effective_to when an
# adopted version is retired; the new `categories` column joins that list, so retiring a version
# cannot rewrite the categories its entries were judged by.
FROZEN_VERSION = "an adopted or retired catalog version is immutable"
VERSION_COLUMNS = (
    "id", "village_id", "scheme_id", "number", "title", "adopted_on", "adopted_by_body", "note",
    "effective_from", "created_at", "created_by", "adopted_by",
)  # fmt: skip


def _version_guard(columns: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        # json has no equality operator: compare its text (the row is not rewritten on retire).
        same = " AND ".join(
            f"NEW.{c}::text IS NOT DISTINCT FROM OLD.{c}::text"
            if c == "categories"
            else f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}"
            for c in columns
        )
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION catalog_versions_frozen() RETURNS trigger
            LANGUAGE plpgsql AS $$
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
    else:
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in columns)
        op.execute("DROP TRIGGER IF EXISTS catalog_versions_frozen_update")
        op.execute(
            "CREATE TRIGGER catalog_versions_frozen_update BEFORE UPDATE ON catalog_versions "
            "WHEN OLD.status <> 'draft' AND NOT (OLD.status = 'adopted' "
            f"AND NEW.status = 'retired' AND {same}) "
            f"BEGIN SELECT RAISE(ABORT, '{FROZEN_VERSION}'); END"
        )


def upgrade() -> None:
    op.add_column("catalog_versions", sa.Column("categories", sa.JSON(), nullable=True))
    _version_guard((*VERSION_COLUMNS, "categories"))
    op.create_table(
        "setting_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.Integer(), nullable=False),
        sa.Column("scheme_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("applied_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_setting_changes_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["scheme_id"], ["schemes.id"], name=op.f("fk_setting_changes_scheme_id_schemes")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_setting_changes_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setting_changes")),
    )
    op.create_index(
        "ix_setting_changes_lookup",
        "setting_changes",
        ["village_id", "scheme_id", "name"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_setting_changes_lookup", table_name="setting_changes")
    op.drop_table("setting_changes")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS catalog_versions_frozen_update")
    op.drop_column("catalog_versions", "categories")
    _version_guard(VERSION_COLUMNS)
