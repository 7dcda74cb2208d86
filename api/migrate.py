"""Run alembic migrations from code (the app, the CLI and the tests all build schemas this way)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from points.db import read_only


def migrations_dir() -> Path:
    """Return the migrations folder: beside the packages in a checkout, inside api/ in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("the migrations folder is missing from this installation")


def alembic_config(engine: Engine | None = None) -> Config:
    """Return an alembic config pointing at our migrations (and at `engine`, when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision`, in one transaction."""
    cfg = alembic_config(engine)
    # Every command starts by migrating: when there is nothing to do, look without taking
    # SQLite's write lock, so a read-only command (verify, an export) never waits for a writer.
    if revision == "head":
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory.from_config(cfg).get_heads())
        if heads == {current_revision(read_only(engine))}:
            return
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def current_revision(engine: Engine) -> str | None:
    """Return the database's alembic revision, None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
