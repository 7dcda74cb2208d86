"""Declarative base, column types, and engine/session factories for SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from points.direct import send

# One naming convention so that constraint names are stable across databases and migrations.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# 32-bit ids: a county's ~10M postings a year leave two centuries of headroom, and SQLite needs
# INTEGER PRIMARY KEY (the rowid alias) for cheap autoincrement.
intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
str40 = Annotated[str, mapped_column(String(40))]
str100 = Annotated[str, mapped_column(String(100))]
utcdt = Annotated[datetime, mapped_column(UTCDateTime())]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), int: Integer()}


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


# Execution option marking a read-only unit of work (a GET request, an export, verify).
READ_ONLY = "points_read_only"
# With READ_ONLY on SQLite: no transaction at all, each statement reads the latest committed
# state on its own (a request's read phase of one statement: `api.db.reads_first`).
READ_EACH = "points_read_each"


def read_only(engine: Engine) -> Engine:
    """Return the engine for read-only work: on SQLite it never takes the write lock."""
    return engine.execution_options(**{READ_ONLY: True})


class ReadOnlyWriteError(RuntimeError):
    """A unit of work declared read-only tried to write: a programming error, caught early."""


class _WriteTurn:
    """One SQLite database file's write turn within this process (decision 0029).

    SQLite lets one writer in at a time; a connection that finds the lock taken sleeps in
    SQLite's busy handler (1, 2, 5, 10 … 100 ms) and retries, so under a burst the lock sits
    free while the next writer sleeps, and a writer can lose the race many times over (p99 of
    seconds). The server's threads instead queue here first: the next one goes the moment the
    previous commits. Other processes (the CLI, a second server) still meet at SQLite's lock,
    with busy_timeout as before. A thread that already holds the turn (a second connection
    inside its own write) does not wait on itself."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None


_turns: dict[str, _WriteTurn] = {}
_turns_lock = threading.Lock()


def _write_turn(database: str) -> _WriteTurn:
    key = os.path.realpath(database) if database and database != ":memory:" else ""
    with _turns_lock:
        return _turns.setdefault(key, _WriteTurn()) if key else _WriteTurn()


class _QueuedConnection(sqlite3.Connection):
    """The stdlib connection, taking this process's write turn for its database file before
    BEGIN IMMEDIATE (see `_setup_sqlite`) and giving it back when the transaction ends."""

    def __init__(self, database, *args, **kwargs) -> None:
        super().__init__(database, *args, **kwargs)
        self._turn = _write_turn(os.fsdecode(database))
        self._holding = False
        self._wait = float(kwargs.get("timeout", 5.0))

    def take_write_turn(self) -> None:
        turn, me = self._turn, threading.get_ident()
        if self._holding or turn.owner == me:
            return
        # Bounded: past the wait, go on to BEGIN IMMEDIATE and SQLite's own busy timeout.
        if turn.lock.acquire(timeout=self._wait):
            turn.owner, self._holding = me, True

    def end_write_turn(self) -> None:
        if self._holding:
            self._holding = False
            self._turn.owner = None
            self._turn.lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_write_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_write_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_write_turn()


def _begin_write(conn: Connection) -> None:
    # SQLite: this process's write turn, then BEGIN IMMEDIATE (decisions 0004, 0029).
    # Sent on the driver's cursor (`points.direct.send`: listeners and error translation as
    # `exec_driver_sql`, at a fraction of its cost).
    dbapi_conn = conn.connection.driver_connection
    if not isinstance(dbapi_conn, _QueuedConnection):  # a caller's own sqlite3 factory
        send(conn, "BEGIN IMMEDIATE")
        return
    dbapi_conn.take_write_turn()
    try:
        send(conn, "BEGIN IMMEDIATE")
    except BaseException:
        dbapi_conn.end_write_turn()
        raise


def start_writing(conn: Connection) -> None:
    """Turn a SQLite connection in `READ_EACH` mode (no transaction yet) into a writing one:
    take the write turn and BEGIN IMMEDIATE on the same connection, reads no longer refused
    to write. The caller's Session carries on in the same transaction (nothing is committed,
    nothing it read is expired)."""
    options = conn.get_execution_options()
    if not (options.get(READ_ONLY) and options.get(READ_EACH)):
        raise ValueError("start_writing needs a connection reading statement by statement")
    conn.execution_options(**{READ_ONLY: False, READ_EACH: False})
    _begin_write(conn)


def _setup_sqlite(engine: Engine) -> None:
    # The stdlib driver opens transactions lazily and never as IMMEDIATE; we take over so that
    # every writing transaction begins with BEGIN IMMEDIATE and writers queue on busy_timeout
    # instead of failing later with "database is locked" on a read-to-write upgrade. Work
    # declared read-only (`read_only(engine)`) begins a plain deferred transaction: in WAL mode
    # it reads a snapshot while a writer holds the lock, so exports, statements and pages do
    # not queue behind a quarter close. It must not write (the upgrade could fail at once
    # under load), so a write there is refused before it reaches the database.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        options = conn.get_execution_options()
        if options.get(READ_ONLY, False):
            if not options.get(READ_EACH, False):
                conn.exec_driver_sql("BEGIN")
            return
        _begin_write(conn)

    @event.listens_for(engine, "before_cursor_execute")
    def _no_write_when_read_only(conn, _cursor, statement, _params, _context, _many):
        if conn.get_execution_options().get(READ_ONLY, False):
            verb = statement.lstrip()[:6].upper()
            if verb in ("INSERT", "UPDATE", "DELETE", "REPLAC"):
                raise ReadOnlyWriteError(f"write in a read-only transaction: {statement[:80]}")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL, configured as the ledger requires."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        kwargs["connect_args"].setdefault("factory", _QueuedConnection)
        engine = create_engine(url, **kwargs)
        _setup_sqlite(engine)
    else:
        from points import pgcursor

        kwargs.setdefault("isolation_level", "READ COMMITTED")
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {}).setdefault("cursor_factory", pgcursor.Cursor)
        engine = create_engine(url, **kwargs)
        _detect_citus(engine)
    return engine


def _detect_citus(engine: Engine) -> None:
    # Once per new connection, outside any unit of work: is this a Citus coordinator? (Then a
    # lock may not ride along in a statement that Citus sends to a worker: see below.)
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, record):
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")
            record.info["citus"] = bool(cur.fetchone()[0])
        dbapi_conn.rollback()


def on_citus(session: Session) -> bool:
    """True when the session's database is a Citus coordinator (decision 0018)."""
    return bool(session.connection().info.get("citus"))


def bulk_postgresql(session: Session) -> bool:
    """True on one PostgreSQL server: there a batch of rows goes in one statement with one
    array parameter per column; SQLite and Citus (decision 0018) keep an executemany."""
    return session.get_bind().dialect.name == "postgresql" and not on_citus(session)


def insert_rows(
    session: Session, table: Table, rows: list[dict], *, returning: str = ""
) -> CursorResult | None:
    """Insert rows that all name the same columns, in one statement where it pays.

    On one PostgreSQL server: INSERT .. SELECT FROM unnest(one array per column), returning
    the columns `returning` names (e.g. "number, id"); an executemany sends one INSERT per row,
    each planned and executed on its own (decision 0024). Elsewhere an executemany, and None.
    """
    columns = tuple(rows[0])
    if bulk_postgresql(session) and all(len(r) == len(columns) for r in rows):
        stmt = _unnest_insert(table, columns, returning)
        return session.connection().execute(stmt, {c: [r[c] for r in rows] for c in columns})
    session.connection().execute(insert(table), rows)
    return None


@lru_cache(maxsize=32)
def _unnest_insert(table: Table, columns: tuple[str, ...], returning: str):
    # Strings go as TEXT[]: the column's own length check then applies on assignment, where a
    # cast to VARCHAR(n)[] would silently truncate.
    arrays, params = [], []
    for name in columns:
        item = table.c[name].type
        if isinstance(item, String):
            item = Text()
        sql_type = item.compile(dialect=postgresql.dialect())
        arrays.append(f"CAST(:{name} AS {sql_type}[])")
        params.append(bindparam(name, type_=postgresql.ARRAY(item)))
    # Names from the table's own metadata, values bound: nothing a user typed is in the text.
    stmt = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(arrays)})"  # nosec B608
    )
    if returning:
        stmt += f" RETURNING {returning}"
    return text(stmt).bindparams(*params)


class PointsSession(Session):
    """A Session that hands out the connection of its current transaction without the ORM's
    lookup on every `connection()` call: recording asks for it four to six times a request,
    and each lookup walks the transaction's state machine, the bind and the connection map
    (1.9 µs against 0.7 µs remembered). Only a call with no arguments is answered from what it
    remembers, and only while the transaction it was found in (the Session's `_transaction`)
    is still the active one and its connection is usable; anything else goes the ORM's way
    (and begins, fails or refuses as it would)."""

    _known: tuple | None = None  # (SessionTransaction, Connection)

    def connection(self, bind_arguments=None, execution_options=None):
        if bind_arguments is None and execution_options is None:
            known = self._known
            if (
                known is not None
                and known[0] is self._transaction
                and known[0].is_active
                and not known[1].invalidated
                and not known[1].closed
            ):
                return known[1]
            found = super().connection()
            self._known = (self._transaction, found)
            return found
        return super().connection(bind_arguments, execution_options)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory; sessions never autoflush into surprises at commit time."""
    return sessionmaker(bind=engine, expire_on_commit=False, class_=PointsSession)


def lock_village(session: Session, village_id: int) -> None:
    """Serialise chain appends within one village until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock keyed on the village. SQLite: every write
    transaction already began with BEGIN IMMEDIATE, so the whole database is ours.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k1, :k2)"), {"k1": 1, "k2": village_id})


def lock_name(session: Session, name: str) -> None:
    """Serialise transactions that use the same `name` (e.g. one client's idempotency key)
    until the transaction ends: the second waits, then sees what the first committed.

    PostgreSQL: an advisory transaction lock on a 63-bit hash of the name (the single-key
    space, apart from the two-key locks above). SQLite: BEGIN IMMEDIATE already serialises.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def lock_subjects(session: Session, *, household_ids=(), resident_ids=()) -> None:
    """Serialise recordings for these subjects (households or party members) until commit.

    Caps, once-only limits and repeat counts are per subject: a recording counts what the
    subject has and adds to it under this lock, so concurrent recordings cannot both fit.
    PostgreSQL: advisory locks taken in id order (two batches never deadlock); SQLite: the
    transaction already holds the database.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for k1, ids in ((3, household_ids), (4, resident_ids)):
        ids = sorted(set(ids))
        if ids:
            session.execute(
                text(
                    "SELECT count(pg_advisory_xact_lock(:k1, s.id)) "
                    "FROM (SELECT unnest(CAST(:ids AS integer[])) AS id ORDER BY 1) AS s"
                ),
                {"k1": k1, "ids": ids},
            )


def subject_lock_key(session: Session, *, household_id=None, resident_id=None):
    """The key of `lock_subjects`' lock for one subject, for a statement the caller runs anyway
    to take it (`catalog.find_rule(lock=...)`; None on SQLite): recording one claim then
    spends no statement on it. The lock is held from that statement on; later statements read
    what earlier holders committed (READ COMMITTED takes a fresh snapshot per statement).
    On Citus the lock is taken at once by a statement of its own and None is returned."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    if on_citus(session):
        # Citus would run the statement, and so the lock, on the village's worker, while the
        # batch path locks on the coordinator: take it on the coordinator, in a statement.
        if resident_id is not None:
            lock_subjects(session, resident_ids=[resident_id])
        else:
            lock_subjects(session, household_ids=[household_id])
        return None
    return (4, resident_id) if resident_id is not None else (3, household_id)


def try_lock(session: Session, key: int) -> bool:
    """Try a transaction-scoped lock for a named job; True when this transaction holds it."""
    if session.get_bind().dialect.name == "postgresql":
        return bool(
            session.execute(
                text("SELECT pg_try_advisory_xact_lock(:k1, :k2)"), {"k1": 2, "k2": key}
            ).scalar_one()
        )
    return True


def dialect_insert(session: Session, model):
    """A Core INSERT of the model's table (with ON CONFLICT), outside the ORM's bookkeeping."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)
