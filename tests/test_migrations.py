"""The schema tests run on is built by alembic; models and migrations must never drift apart."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

import points.models  # noqa: F401
from api.migrate import current_revision
from points.db import Base


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_database_is_at_head(engine):
    from alembic.script import ScriptDirectory

    from api.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(engine) == head


def test_ledger_tables_refuse_update_and_delete(engine, session, now):
    from points import ledger
    from tests.factories import make_household, make_scheme, make_village

    village = make_village(session)
    scheme = make_scheme(session, village)
    home = make_household(session, village)
    ledger.award(
        session, scheme=scheme, subject_id=home.id, points=5, idem_key="k", actor_id=None, now=now
    )
    session.commit()
    for sql in (
        "UPDATE postings SET amount = 500",
        "DELETE FROM postings",
        "UPDATE journal_entries SET memo = 'x'",
        "DELETE FROM journal_entries",
    ):
        with engine.connect() as conn:
            try:
                conn.execute(text(sql))
                conn.commit()
            except Exception as exc:  # the driver's error type differs per database
                assert "append-only" in str(exc)
            else:
                raise AssertionError(f"{sql} was allowed")
