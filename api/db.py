"""One database session per request, committed once by the edge when the request succeeded."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask, current_app, g, request
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session

from points.db import (
    READ_EACH,
    READ_ONLY,
    make_engine,
    make_sessionmaker,
    read_only,
    start_writing,
)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# SQLite: how long a writer waits for the process's writing connection before answering 503
# busy (as long as SQLite's own busy timeout, `points.db.make_engine`); config
# SQLITE_WRITER_WAIT (seconds) overrides it.
WRITER_WAIT = 30


def init_app(app: Flask) -> None:
    """Create the engine, migrate when configured, and commit or roll back per request."""
    url = app.config["DATABASE_URL"]
    if make_url(url).get_backend_name() == "sqlite":
        # One connection for all of this process's writing work, a pool for reading
        # (decision 0036): writers take turns anyway, and a SQLite connection keeps its page
        # cache only while no other connection writes; rotating through a pool, every write
        # read its pages again from the file (28 reads a record, a quarter of its CPU).
        wait = float(app.config.get("SQLITE_WRITER_WAIT") or WRITER_WAIT)
        engine = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=wait)
        reader = make_engine(url)
    else:
        engine = reader = make_engine(url)
    app.extensions["points.engine"] = engine
    app.extensions["points.read_engine"] = reader
    app.extensions["points.sessionmaker"] = make_sessionmaker(engine)
    app.extensions["points.read_sessionmaker"] = make_sessionmaker(read_only(reader))
    if app.config.get("AUTO_MIGRATE"):
        from api.migrate import upgrade

        upgrade(
            engine,
            backup_dir=app.config.get("BACKUP_DIR"),
            evidence_root=app.config.get("EVIDENCE_DIR"),
            distributed=app.config.get("DISTRIBUTED") or None,
        )

    @app.after_request
    def _commit(response):
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    commit(session)
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def commit(session: Session) -> None:
    """Commit the request's session. With nothing for the ORM to flush and no savepoint open
    (recording writes by Core statements only), the commit is its connection's: sent there
    directly, without the Session's own commit steps (decision 0035); the caller closes the
    session next, as the edge does. Otherwise `Session.commit`."""
    transaction = session.get_transaction()
    if (
        transaction is not None
        and transaction.is_active
        and session.get_nested_transaction() is None
        and not (session.new or session.dirty or session.deleted)
    ):
        session.connection().commit()
    else:
        session.commit()


def engine() -> Engine:
    """Return the app's engine (on SQLite the one for writing work: one connection)."""
    return current_app.extensions["points.engine"]


def dispose_engines(app: Flask | None = None) -> None:
    """Close every pooled connection of the app (writing and reading)."""
    app = app or current_app
    app.extensions["points.engine"].dispose()
    app.extensions["points.read_engine"].dispose()


def writes_on_get(view):
    """Mark a GET view that writes (it issues a single-use code): it takes the write lock."""
    view.points_writes = True
    return view


def reads_first(view):
    """Mark a write view whose first statement only reads (sign-in and the village, one
    statement): on SQLite it runs outside any transaction (SQLite reads it in a snapshot of its
    own; no BEGIN, no COMMIT, no lock), and the write transaction (BEGIN IMMEDIATE) starts at
    `end_read_phase`, so the database's one write lock covers only what must be consistent
    with the write. Read-phase statements are not one snapshot together: each reads the
    latest committed state. Elsewhere nothing changes. The view must call
    `end_read_phase` (`api.rest.village_for` does) before anything that must see the latest
    data or that writes: a write before it is refused (`ReadOnlyWriteError`)."""
    view.points_reads_first = True
    return view


def _handler_flag(name: str) -> bool:
    view = current_app.view_functions.get(request.endpoint)
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return getattr(view, name, False) or getattr(handler, name, False)


def _reads_only() -> bool:
    return request.method in READ_METHODS and not _handler_flag("points_writes")


def db() -> Session:
    """Return this request's session, opening it on first use.

    GET and HEAD requests read only (unless the view is marked `writes_on_get`): on SQLite
    their transaction does not take the write lock, so they never queue behind a writer.
    A write view marked `reads_first` starts with such a read transaction on SQLite.
    """
    if "db_session" not in g:
        if _reads_only():
            g.db_session = current_app.extensions["points.read_sessionmaker"]()
        else:
            g.db_session = session = current_app.extensions["points.sessionmaker"]()
            if _handler_flag("points_reads_first") and session.get_bind().dialect.name == "sqlite":
                # No transaction (each statement on its own), writes refused until
                # end_read_phase.
                session.connection(execution_options={READ_ONLY: True, READ_EACH: True})
                g.db_read_phase = True
    return g.db_session


def end_read_phase() -> None:
    """End a `reads_first` request's read phase (SQLite): its connection takes the write turn
    and begins the write transaction (BEGIN IMMEDIATE) there and then, so what follows sees
    everything committed before it. Nothing is committed or expired. Nothing to do elsewhere."""
    if g.pop("db_read_phase", False):
        start_writing(g.db_session.connection())


@contextmanager
def transaction(app: Flask | None = None, *, read_only: bool = False):
    """Yield a session in one transaction for CLI commands and jobs: commit, or roll back.

    `read_only` work (exports, verify) does not take SQLite's write lock and may not write.
    """
    app = app or current_app
    maker = "points.read_sessionmaker" if read_only else "points.sessionmaker"
    session = app.extensions[maker]()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
