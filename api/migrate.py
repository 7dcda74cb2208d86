"""Run alembic migrations from code (the app, the CLI and the tests all build schemas this way)."""

from __future__ import annotations

import os
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


def upgrade(
    engine: Engine,
    revision: str = "head",
    *,
    backup_dir: str | Path | None = None,
    evidence_root: str | Path | None = None,
    distributed: str | None = None,
) -> Path | None:
    """Upgrade the database behind `engine` to `revision`, in one transaction.

    With `backup_dir`, a SQLite database that holds data and is not yet at `revision` is backed
    up first (with its photos) and the backup recorded once the schema is upgraded; return the
    backup's path (None when none was needed). Should the folder be missing (a USB stick not
    plugged in), the backup goes to `backups/` beside the database file instead: an update is
    never applied to an embedded database without a copy of it.

    `distributed` ("citus", default: the POINTS_DISTRIBUTED environment variable) distributes
    the schema on a Citus coordinator after migrating (points.distribution; decision 0018).
    """
    mode = distributed if distributed is not None else os.environ.get("POINTS_DISTRIBUTED", "")
    if mode not in ("", "citus"):
        raise ValueError(f"POINTS_DISTRIBUTED={mode!r}: the only distributed mode is 'citus'")
    taken = None
    if backup_dir is not None and _needs_backup(engine, revision):
        taken = _backup_before(engine, Path(backup_dir), evidence_root)
    cfg = alembic_config(engine)
    # Every command starts by migrating: when there is nothing to do, look without taking
    # SQLite's write lock, so a read-only command (verify, an export) never waits for a writer.
    if revision == "head":
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory.from_config(cfg).get_heads())
        if heads == {current_revision(read_only(engine))}:
            if mode:
                _distribute(engine)
            return
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
    if mode:
        _distribute(engine)
    if taken is not None:
        from points import backups
        from points.db import make_sessionmaker, utcnow

        with make_sessionmaker(engine)() as session, session.begin():
            backups.record_backup(session, taken=taken, now=utcnow(), reason=backups.MIGRATION)
        return taken.path
    return None


def _distribute(engine: Engine) -> None:
    """Distribute, on the Citus coordinator, every table not yet distributed (idempotent)."""
    from points.distribution import distribute

    shards = os.environ.get("POINTS_CITUS_SHARD_COUNT")
    with engine.connect() as conn:
        distribute(conn, shard_count=int(shards) if shards else None)
        conn.commit()
    # The step set database-wide Citus settings: connections opened before it lack them.
    engine.dispose()


def _needs_backup(engine: Engine, revision: str) -> bool:
    from alembic.script import ScriptDirectory

    if engine.dialect.name != "sqlite" or not engine.url.database:
        return False
    db_file = Path(engine.url.database)
    if not db_file.exists() or db_file.stat().st_size == 0:
        return False
    current = current_revision(read_only(engine))  # a look, without the write lock
    if current is None:  # never migrated: nothing to lose
        return False
    target = ScriptDirectory.from_config(alembic_config()).as_revision_number(revision)
    return current != target


def _backup_before(engine: Engine, folder: Path, evidence_root):
    """Write a backup of the database as it is, before any migration touches it."""
    import logging

    from sqlalchemy import text

    from points import backups
    from points.backups import BackupFolderError
    from points.db import utcnow

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT v.code, h.seq, h.hash FROM villages v "
                "LEFT JOIN chain_heads h ON h.village_id = v.id ORDER BY v.code"
            )
        ).all()
    heads = {code: [seq or 0, hash_ or ""] for code, seq, hash_ in rows}
    now = utcnow()
    args = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "evidence_root": Path(evidence_root) if evidence_root else None,
        "now": now,
        "reason": backups.MIGRATION,
        "heads": heads,
        "number": 0,
    }
    try:
        path = backups.write_archive(folder=folder, **args)
    except BackupFolderError:
        fallback = Path(engine.url.database).resolve().parent / "backups"
        logging.getLogger(__name__).warning(
            "backup folder %s is missing; backing up to %s before migrating", folder, fallback
        )
        fallback.mkdir(exist_ok=True)
        path = backups.write_archive(folder=fallback, **args)
    return backups.Taken(None, path, path.stat().st_size, heads)


def current_revision(engine: Engine) -> str | None:
    """Return the database's alembic revision, None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
