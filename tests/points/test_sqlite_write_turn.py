"""SQLite: the server's threads take turns to write in the process (decision 0029).

What a user would notice if it broke: under a burst of recordings a writer that found the lock
taken slept in SQLite's busy handler and retried (p99 of seconds at 16 clients); a turn that is
never given back would hang every later write; a turn taken by reads would put exports back
behind a quarter close. Each wait below is bounded, so a regression fails instead of hanging.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from points.db import make_engine, read_only
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's write lock; PostgreSQL has none")


@pytest.fixture
def sqlite_engine(db_url):
    engine = make_engine(db_url, pool_size=8)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE turn_probe (id INTEGER PRIMARY KEY, who TEXT)")
    yield engine
    engine.dispose()


def _insert(conn, who: str) -> None:
    conn.execute(text("INSERT INTO turn_probe (who) VALUES (:w)"), {"w": who})


def test_a_second_writer_waits_for_the_turn_and_goes_when_the_first_commits(sqlite_engine):
    begun: list[str] = []

    @event.listens_for(sqlite_engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, *_):
        if statement.startswith("BEGIN IMMEDIATE"):
            begun.append(threading.current_thread().name)

    first = sqlite_engine.connect()
    first.begin()
    _insert(first, "first")
    entered, done = threading.Event(), threading.Event()

    def second():
        entered.set()
        with sqlite_engine.begin() as conn:
            _insert(conn, "second")
        done.set()

    t = threading.Thread(target=second, name="second")
    t.start()
    assert entered.wait(10)
    assert not done.wait(0.3), "the second writer must wait while the first holds the lock"
    # It waits for its turn in the process, not inside BEGIN IMMEDIATE (SQLite's busy handler,
    # which sleeps up to 100 ms between tries and can lose the race to a newcomer).
    assert begun == ["MainThread"]
    first.commit()
    first.close()
    assert done.wait(10), "the second writer must go once the first commits"
    t.join(10)
    assert begun == ["MainThread", "second"]
    with sqlite_engine.connect() as conn:
        rows = conn.execute(text("SELECT who FROM turn_probe ORDER BY id")).scalars().all()
    assert rows == ["first", "second"]


def test_a_rolled_back_or_failed_write_gives_the_turn_back(sqlite_engine):
    with pytest.raises(RuntimeError), sqlite_engine.begin() as conn:
        _insert(conn, "lost")
        raise RuntimeError("the request failed")
    with pytest.raises(IntegrityError), sqlite_engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO turn_probe (id, who) VALUES (1, 'a'), (1, 'b')")

    finished = threading.Event()

    def later():
        with sqlite_engine.begin() as conn:
            _insert(conn, "later")
        finished.set()

    threading.Thread(target=later, daemon=True).start()
    assert finished.wait(10), "a write after a rollback must not wait for a turn never returned"


def test_reads_do_not_take_the_turn(sqlite_engine):
    writer = sqlite_engine.connect()
    writer.begin()
    _insert(writer, "held")
    counted: list[int] = []

    def read():
        with read_only(sqlite_engine).connect() as conn:
            counted.append(conn.execute(text("SELECT count(*) FROM turn_probe")).scalar_one())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        t.join(10)
        # Answered during someone's write, from the snapshot before it.
        assert counted == [0], "a read must not queue behind a writer"
    finally:
        writer.rollback()
        writer.close()


def test_a_thread_inside_its_own_write_meets_sqlite_not_itself(sqlite_engine):
    # A second connection of the same thread, opened inside its write: it must not wait for a
    # turn that only this thread can give back (that would hang for the turn's whole wait);
    # SQLite's busy timeout answers as it always did (shortened here to 0.2 s).
    with sqlite_engine.begin() as outer:
        _insert(outer, "outer")
        inner = sqlite_engine.connect()
        try:
            inner.connection.driver_connection.execute("PRAGMA busy_timeout=200")
            started = time.monotonic()
            with pytest.raises(OperationalError, match="locked"), inner.begin():
                _insert(inner, "inner")
            # Not the turn's own 30 s wait first (a generous bound, not a timing).
            assert time.monotonic() - started < 10
        finally:
            inner.close()
