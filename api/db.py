"""One database session per request, committed once by the edge when the request succeeded."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask, current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from points.db import make_engine, make_sessionmaker, read_only

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    """Create the engine, migrate when configured, and commit or roll back per request."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["points.engine"] = engine
    app.extensions["points.sessionmaker"] = make_sessionmaker(engine)
    app.extensions["points.read_sessionmaker"] = make_sessionmaker(read_only(engine))
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
                    session.commit()
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


def engine() -> Engine:
    """Return the app's engine."""
    return current_app.extensions["points.engine"]


def writes_on_get(view):
    """Mark a GET view that writes (it issues a single-use code): it takes the write lock."""
    view.points_writes = True
    return view


def _reads_only() -> bool:
    if request.method not in READ_METHODS:
        return False
    view = current_app.view_functions.get(request.endpoint)
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return not (getattr(view, "points_writes", False) or getattr(handler, "points_writes", False))


def db() -> Session:
    """Return this request's session, opening it on first use.

    GET and HEAD requests read only (unless the view is marked `writes_on_get`): on SQLite
    their transaction does not take the write lock, so they never queue behind a writer.
    """
    if "db_session" not in g:
        maker = "points.read_sessionmaker" if _reads_only() else "points.sessionmaker"
        g.db_session = current_app.extensions[maker]()
    return g.db_session


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
