"""The PostgreSQL cursor that describes a result only when asked (points/pgcursor.py): code
that reads the description gets psycopg's own, and a statement SQLAlchemy has run before
builds none (recording's hot path)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import bindparam, select, text

from points.models import Village
from tests.conftest import PG_URL
from tests.factories import make_village

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL's driver only")


def test_a_description_read_is_psycopgs_own(engine):
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()
        cursor.execute("SELECT 1 AS one, 'x'::text AS two")
        lazy = cursor.description
        plain = psycopg.Cursor(raw)
        plain.execute("SELECT 1 AS one, 'x'::text AS two")
        assert [c.name for c in lazy] == ["one", "two"] and len(lazy) == 2
        assert [tuple(c) for c in lazy] == [tuple(c) for c in plain.description]
        cursor.execute("SET application_name = 'points-test'")  # no rows: no description
        assert cursor.description is None
        # Unread, then the cursor moves on: reading it now would describe the wrong result.
        cursor.execute("SELECT 1 AS one")
        stale = cursor.description
        cursor.execute("SELECT 2 AS other")
        with pytest.raises(RuntimeError):
            list(stale)
        # Text statements (no cached metadata) still get their columns by name.
        row = conn.execute(text("SELECT 7 AS seven, 'x' AS ex")).mappings().one()
        assert row == {"seven": 7, "ex": "x"}


def test_a_statement_run_before_builds_no_column_objects(engine, session, monkeypatch):
    make_village(session, "described")
    session.commit()
    statement = select(*Village.__table__.c).where(Village.code == bindparam("code"))
    built = []
    original = psycopg.Column

    class Counting(original):
        def __init__(self, cursor, index):
            built.append(index)
            super().__init__(cursor, index)

    monkeypatch.setattr(psycopg, "Column", Counting)
    with engine.connect() as conn:
        first = conn.execute(statement, {"code": "described"}).one()
        assert built, "the first run reads the description to build the result's metadata"
        built.clear()
        again = conn.execute(statement, {"code": "described"}).one()
    assert again == first and again.code == "described"
    assert built == []
