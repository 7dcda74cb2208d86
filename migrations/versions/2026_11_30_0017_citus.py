"""catalog_rules_frozen() looks up the rule's version within the rule's village

Revision ID: 0017
Revises: 0015
Create Date: 2026-11-30 15:20:00

The same check as 0003, with `v.village_id = NEW.village_id` (a rule and its version are always
in one village). On a Citus cluster (decision 0018) the trigger runs on the worker holding the
rule's shard; naming the village makes its lookup of catalog_versions a single-shard query on
the colocated shard of the same worker instead of a query across the cluster. PostgreSQL only:
SQLite's triggers are unchanged.
"""

from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

FROZEN_RULE = "catalog_rules of an adopted or retired catalog version are immutable"


def _function(village: bool) -> str:
    old = " AND v.village_id = OLD.village_id" if village else ""
    new = " AND v.village_id = NEW.village_id" if village else ""
    return f"""
        CREATE OR REPLACE FUNCTION catalog_rules_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' AND EXISTS (SELECT 1 FROM catalog_versions v
                    WHERE v.id = OLD.version_id{old} AND v.status <> 'draft') THEN
                RAISE EXCEPTION '{FROZEN_RULE}' USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF TG_OP <> 'DELETE' AND EXISTS (SELECT 1 FROM catalog_versions v
                    WHERE v.id = NEW.version_id{new} AND v.status <> 'draft') THEN
                RAISE EXCEPTION '{FROZEN_RULE}' USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END $$
        """


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(village=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(village=False))
