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
