"""The test databases themselves (tests/conftest.py, decision 0031): on PostgreSQL a database
goes back to the worker's pool after a test, and the next test must find exactly the migrated
template: no row (the append-only ledger included), every sequence where the template has it,
the same schema; a database whose schema a test changed is not reused."""

import pytest
from sqlalchemy import text

from points import ledger
from points.db import make_engine, make_sessionmaker
from tests.conftest import CITUS, PG_URL
from tests.factories import make_household, make_scheme, make_village

pytestmark = pytest.mark.skipif(
    not PG_URL or CITUS, reason="the pool is PostgreSQL's (Citus empties its one database)"
)


def _state(url: str) -> tuple:
    """Every table's row count, every sequence's last value and the alembic revision."""
    engine = make_engine(url)
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ).scalars()
        counts = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables}
        sequences = conn.execute(
            text(
                "SELECT c.relname, pg_sequence_last_value(c.oid) FROM pg_class c "
                "WHERE c.relkind = 'S' ORDER BY 1"
            )
        ).all()
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return counts, sequences, revision


def _write(url: str, now) -> None:
    """Villages, households, a posted award (journal entries, postings): ids drawn."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        village = make_village(s)
        scheme = make_scheme(s, village)
        home = make_household(s, village, members=3)
        ledger.award(
            s, scheme=scheme, subject_id=home.id, points=5, idem_key="k", actor_id=None, now=now
        )
        s.commit()
    engine.dispose()


def test_a_database_written_by_a_test_comes_back_as_the_template(databases, now):
    template = _state(databases._url_for(databases.template))
    assert not any(template[0][t] for t in template[0] if t != "alembic_version")

    url = databases.fresh()
    _write(url, now)
    written = _state(url)
    assert written[0]["postings"] > 0 and written[0]["journal_entries"] > 0
    assert written[1] != template[1]
    databases.drop(url)

    again = databases.fresh()
    assert again == url  # the same database, from the pool ...
    assert _state(again) == template  # ... holding exactly what the template holds
    _write(again, now)  # and the ids it hands out are the template's: the same rows again
    assert _state(again) == written
    databases.drop(again)


def test_a_database_whose_schema_a_test_changed_is_dropped(databases):
    url = databases.fresh()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER postings_append_only ON postings"))
    engine.dispose()
    databases.drop(url)
    assert databases.name_of(url) not in databases.pool
    admin = make_engine(PG_URL)
    with admin.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM pg_database WHERE datname = :n"),
            {"n": databases.name_of(url)},
        ).scalar()
    admin.dispose()
    assert left == 0
    other = databases.fresh()
    assert other != url  # the next test gets another copy of the template
    databases.drop(other)
