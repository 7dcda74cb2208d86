"""The Citus mode's table map (points.distribution, decision 0018) stays complete and true.

These run on every database: a table added without a line in TABLES fails here, long before
anyone migrates a cluster. The cluster itself is exercised by scripts/citus-cluster.sh."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import points.models  # noqa: F401  (registers every table)
from points.db import Base
from points.distribution import (
    GLOBAL,
    TABLES,
    VILLAGE,
    UnclassifiedTableError,
    _composite,
    check_classified,
)


def test_every_table_of_the_models_is_classified():
    missing = sorted(set(Base.metadata.tables) - set(TABLES))
    assert missing == [], f"add these to points.distribution.TABLES: {missing}"


def test_village_tables_carry_a_village_id_that_is_never_null_and_global_ones_may_not():
    for name, kind in TABLES.items():
        table = Base.metadata.tables.get(name)
        if table is None:
            continue
        column = table.c.get("village_id")
        if kind == VILLAGE:
            assert column is not None and not column.nullable, name
        else:
            assert kind == GLOBAL
            assert column is None or column.nullable, name


def test_a_table_not_in_the_map_stops_the_distribution_step(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the step reads PostgreSQL's catalog")
    with engine.connect() as conn:
        check_classified(conn)  # the migrated schema: complete
        conn.execute(text("CREATE TABLE honours_draft (id integer PRIMARY KEY)"))
        with pytest.raises(UnclassifiedTableError, match="honours_draft"):
            check_classified(conn)
        conn.rollback()


def test_foreign_keys_between_village_tables_become_composite():
    assert _composite("FOREIGN KEY (household_id) REFERENCES households(id)") == (
        "FOREIGN KEY (village_id, household_id) REFERENCES households(village_id, id)"
    )
    assert _composite(
        "FOREIGN KEY (entry_id) REFERENCES journal_entries(id) ON DELETE CASCADE"
    ) == (
        "FOREIGN KEY (village_id, entry_id) REFERENCES journal_entries(village_id, id) "
        "ON DELETE CASCADE"
    )


def test_a_migration_on_a_distributed_database_sets_foreign_keys_aside_and_rekeys(engine):
    """The rules of a migration run on an already distributed database (decision 0025), seen on
    plain PostgreSQL: the foreign keys a migration asks for wait for the distribution step and
    come back in the fresh path's form; a unique index on a distributed table gets village_id."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the Citus rules apply to PostgreSQL")
    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from points.distribution import CitusUpgrade

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"target_metadata": Base.metadata})
        upgrade = CitusUpgrade(conn, hashed={"honour_entries", "households"})
        upgrade.install(context)
        op = Operations(context)
        op.create_table(
            "honour_drafts",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("village_id", sa.Integer, sa.ForeignKey("villages.id"), nullable=False),
            sa.Column(
                "household_id",
                sa.Integer,
                sa.ForeignKey("households.id", ondelete="CASCADE"),
                nullable=False,
            ),
        )
        op.add_column(
            "honour_entries",
            sa.Column("mentor_id", sa.Integer, sa.ForeignKey("residents.id"), nullable=True),
        )
        op.add_column(
            "users",
            sa.Column("home_id", sa.Integer, sa.ForeignKey("households.id"), nullable=True),
            inline_references=True,
        )
        op.create_foreign_key(
            "fk_honour_entries_draft", "honour_entries", "honour_drafts", ["list_id"], ["id"]
        )
        op.drop_constraint("fk_honour_entries_draft", "honour_entries", type_="foreignkey")
        op.create_index(
            "uq_honour_entries_mentor",
            "honour_entries",
            ["mentor_id"],
            unique=True,
            postgresql_where=sa.text("mentor_id IS NOT NULL"),
        )
        op.create_unique_constraint("uq_households_door", "households", ["door_plate"])
        created = conn.execute(
            text(
                "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
                "AND (conrelid = 'honour_drafts'::regclass OR conname LIKE '%mentor%' "
                "OR conname LIKE '%home_id%')"
            )
        ).all()
        index = conn.execute(
            text("SELECT pg_get_indexdef('uq_honour_entries_mentor'::regclass)")
        ).scalar()
        unique = conn.execute(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'uq_households_door'"
            )
        ).scalar()
        conn.rollback()
    assert created == []  # none made yet: they wait for the tables to be distributed
    assert index.endswith("(village_id, mentor_id) WHERE (mentor_id IS NOT NULL)")
    assert unique == "UNIQUE (village_id, door_plate)"
    final = {
        (k.table, k.columns, k.ref, k.ref_columns): k.as_distributed() for k in upgrade.deferred
    }
    assert set(final) == {
        ("honour_drafts", ("village_id",), "villages", ("id",)),
        ("honour_drafts", ("household_id",), "households", ("id",)),
        ("honour_entries", ("mentor_id",), "residents", ("id",)),
        ("users", ("home_id",), "households", ("id",)),
    }
    # village -> global unchanged; global -> village dropped; village -> village composite
    assert final[("honour_drafts", ("village_id",), "villages", ("id",))].columns == ("village_id",)
    assert final[("users", ("home_id",), "households", ("id",))] is None
    mentor = final[("honour_entries", ("mentor_id",), "residents", ("id",))]
    assert (mentor.columns, mentor.ref_columns) == (
        ("village_id", "mentor_id"),
        ("village_id", "id"),
    )
