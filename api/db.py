"""One database session per request, committed once by the edge when the request succeeded."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from points.db import make_engine, make_sessionmaker


def init_app(app: Flask) -> None:
    """Create the engine, migrate when configured, and commit or roll back per request."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["points.engine"] = engine
    app.extensions["points.sessionmaker"] = make_sessionmaker(engine)
    if app.config.get("AUTO_MIGRATE"):
        from api.migrate import upgrade

        upgrade(
            engine,
            backup_dir=app.config.get("BACKUP_DIR"),
            evidence_root=app.config.get("EVIDENCE_DIR"),
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


def db() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["points.sessionmaker"]()
    return g.db_session


@contextmanager
def transaction(app: Flask | None = None):
    """Yield a session in one transaction for CLI commands and jobs: commit, or roll back."""
    app = app or current_app
    session = app.extensions["points.sessionmaker"]()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
