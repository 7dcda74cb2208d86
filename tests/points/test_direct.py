"""Statements run on the driver's cursor (`points.direct.Direct`) must write and read exactly
what `Connection.execute` writes and reads, and fail the same way: recording's claim, audit
event, rule and sign-in go through them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import bindparam, event, exc, insert, select, text
from sqlalchemy.orm import Session

from points.audit import Note
from points.catalog.versions import _rule_rows, _rule_statement
from points.db import ReadOnlyWriteError, read_only
from points.direct import Direct
from points.models import AuditEvent
from tests.factories import adopt_catalog, make_household, make_scheme, make_village

EVENTS = AuditEvent.__table__
COLUMNS = [c.key for c in EVENTS.c if c.key != "id"]
INSERT_EVENT = insert(EVENTS).values({k: bindparam(k, type_=EVENTS.c[k].type) for k in COLUMNS})
EVENTS_OF = select(*EVENTS.c).where(EVENTS.c.village_id == bindparam("v")).order_by(EVENTS.c.id)

RULE = {
    "code": "ZZ-01",
    "name": "参加村民会议",
    "category": "自治",
    "sign": 1,
    "points": 2,
    "unit": "time",
    "review": "never",
    "recorder_roles": ["admin", "recorder"],
    "subjects": ["household"],
    "caps": {"month": 6},
}


def _event(village_id: int, summary: str) -> dict:
    return {
        "village_id": village_id,
        "actor_id": None,
        "action": "claim.record",
        "object_type": "claim",
        "object_id": "7",
        "summary": summary,
        "details": {"户": [1, 2], "备注": "夜间巡逻"},
        "remote_addr": "127.0.0.1",
        "created_at": datetime(2026, 11, 20, 8, 30, 15, 123456, tzinfo=UTC),
    }


def test_a_direct_insert_stores_what_core_stores(session: Session):
    village = make_village(session)
    connection = session.connection()
    connection.execute(INSERT_EVENT, _event(village.id, "core"))
    Direct(INSERT_EVENT).rows(connection, _event(village.id, "direct"))
    # As stored, not as read back: the same text for the datetime and the JSON on SQLite.
    stored = connection.execute(
        text(
            "SELECT summary, CAST(created_at AS TEXT), CAST(details AS TEXT), object_id "
            "FROM audit_events WHERE village_id = :v ORDER BY id"
        ),
        {"v": village.id},
    ).all()
    assert [row[0] for row in stored] == ["core", "direct"]
    assert stored[0][1:] == stored[1][1:]


@pytest.mark.parametrize("details", [None, {"户": [1, 2]}])
def test_an_audit_note_stores_what_core_stores(session: Session, details):
    village = make_village(session)
    connection = session.connection()
    connection.execute(INSERT_EVENT, {**_event(village.id, "core"), "details": details})
    made = _event(village.id, "note")
    del made["object_id"]
    made["now"] = made.pop("created_at")
    Note(**{**made, "details": details}).append(session, 7)
    # No details: the JSON text 'null' (not SQL NULL), as the column's bind processor stores.
    kind = "typeof(details)" if connection.dialect.name == "sqlite" else "details IS NULL"
    stored = connection.execute(
        text(
            f"SELECT summary, CAST(details AS TEXT), {kind}, object_id, "  # noqa: S608
            "CAST(created_at AS TEXT) FROM audit_events WHERE village_id = :v ORDER BY id"
        ),
        {"v": village.id},
    ).all()
    assert [row[0] for row in stored] == ["core", "note"]
    assert stored[0][1:] == stored[1][1:]
    assert stored[0][1] == ("null" if details is None else stored[0][1])


def test_direct_rows_read_as_core_rows(session: Session):
    village = make_village(session)
    connection = session.connection()
    for summary in ("一", "二"):
        connection.execute(INSERT_EVENT, _event(village.id, summary))
    core = connection.execute(EVENTS_OF, {"v": village.id}).all()
    direct = Direct(EVENTS_OF).rows(connection, {"v": village.id})
    assert [tuple(r) for r in direct] == [tuple(r) for r in core]
    assert direct[0]._fields == core[0]._fields
    assert direct[1].details == {"户": [1, 2], "备注": "夜间巡逻"}
    # Through the column's own result processor: an aware UTC datetime on both databases.
    assert direct[1].created_at == datetime(2026, 11, 20, 8, 30, 15, 123456, tzinfo=UTC)


def test_the_rule_row_reads_as_core_reads_it(session: Session, now):
    village = make_village(session)
    scheme = make_scheme(session, village)
    adopt_catalog(session, scheme, [RULE], now=now)
    household = make_household(session, village)
    params = {
        "scheme_id": scheme.id,
        "village_id": village.id,
        "code": "ZZ-01",
        "on": date(2026, 11, 20),
        "household_id": household.id,
    }
    connection = session.connection()
    core = connection.execute(_rule_statement(False, rows=True, household=True), params).first()
    direct = _rule_rows(False, True).first(connection, params)
    assert direct._fields == core._fields
    assert tuple(direct) == tuple(core)
    assert direct.caps == {"month": 6} and direct.household_id == household.id


def test_a_driver_error_is_sqlalchemys_and_the_transaction_rolls_back(session: Session):
    village = make_village(session)
    connection = session.connection()
    bad = _event(village.id, "孤儿") | {"actor_id": 987654}  # no such user: a foreign key
    with pytest.raises(exc.IntegrityError):
        Direct(INSERT_EVENT).rows(connection, bad)
    session.rollback()
    assert session.execute(select(EVENTS.c.id).where(EVENTS.c.village_id == village.id)).all() == []


def test_the_engines_listeners_see_a_direct_statement(session: Session):
    village = make_village(session)
    connection = session.connection()
    seen = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(connection.engine, "before_cursor_execute", listener)
    try:
        Direct(EVENTS_OF).rows(connection, {"v": village.id})
    finally:
        event.remove(connection.engine, "before_cursor_execute", listener)
    assert len(seen) == 1 and seen[0].lstrip().startswith("SELECT")


def test_a_direct_write_in_read_only_work_is_refused(engine, session: Session):
    village = make_village(session)
    session.commit()
    if engine.dialect.name != "sqlite":
        pytest.skip("the read-only guard is SQLite's (its read transactions take no lock)")
    with read_only(engine).connect() as connection, pytest.raises(ReadOnlyWriteError):
        Direct(INSERT_EVENT).rows(connection, _event(village.id, "写"))


def test_a_statement_whose_text_depends_on_its_parameters_is_refused(session: Session):
    expanding = select(EVENTS.c.id).where(EVENTS.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="depend on its parameters"):
        Direct(expanding).rows(session.connection(), {"ids": [1, 2]})
