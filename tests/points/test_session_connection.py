"""`PointsSession.connection()` remembers the connection of the current transaction (decision
0035). What it must never do: hand out a connection of a transaction that has ended, so that
work done after a commit, a rollback or a close would land outside the transaction the caller
is in (written without being committed, or kept after a rollback)."""

from __future__ import annotations

from sqlalchemy import insert, literal, select

from points.db import PointsSession
from points.models import Village
from tests.factories import make_village


def _codes(session_factory) -> set[str]:
    with session_factory() as other:
        return set(other.execute(select(Village.code)).scalars())


def _insert(connection, code: str) -> None:
    """A copy of village v0 under another code, written on `connection` alone."""
    table = Village.__table__
    columns = [c for c in table.columns if c.key not in ("id", "code")]
    copied = select(literal(code), *columns).where(table.c.code == "v0")
    connection.execute(insert(table).from_select(["code", *(c.key for c in columns)], copied))


def test_a_session_is_a_points_session(session):
    assert isinstance(session, PointsSession)


def test_the_connection_of_an_ended_transaction_is_never_handed_out(session_factory):
    with session_factory() as s:
        make_village(s, code="v0")
        s.commit()

        first = s.connection()
        assert s.connection() is first  # remembered within one transaction
        _insert(first, "after-begin")
        s.commit()
        assert first.closed  # the Session gave it back at commit

        # After a commit: a new transaction, a new connection, and its work is committed with it.
        second = s.connection()
        assert second is not first and not second.closed and s.in_transaction()
        _insert(s.connection(), "after-commit")
        s.commit()
        assert {"after-begin", "after-commit"} <= _codes(session_factory)

        # After a rollback: what was written through the remembered connection is undone.
        third = s.connection()
        _insert(third, "rolled-back")
        s.rollback()
        fourth = s.connection()
        assert fourth is not third and not fourth.closed
        _insert(fourth, "after-rollback")
        s.rollback()
        assert not {"rolled-back", "after-rollback"} & _codes(session_factory)

        # After a close: the same.
        fifth = s.connection()
        s.close()
        sixth = s.connection()
        assert sixth is not fifth and not sixth.closed
        _insert(sixth, "after-close")
        s.commit()
        assert "after-close" in _codes(session_factory)


def test_a_savepoint_shares_its_transaction_connection(session_factory):
    with session_factory() as s:
        make_village(s, code="v0")
        s.commit()
        outer = s.connection()
        nested = s.begin_nested()
        assert s.connection() is outer
        _insert(s.connection(), "in-savepoint")
        nested.rollback()
        assert s.connection() is outer and not outer.closed
        _insert(s.connection(), "kept")
        s.commit()
        codes = _codes(session_factory)
        assert "kept" in codes and "in-savepoint" not in codes
