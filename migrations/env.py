"""Alembic environment: runs on a connection handed in by api.migrate, or on POINTS_DATABASE_URL."""

import os

from alembic import context

import points.models  # noqa: F401  (registers every table on the metadata)
from points.db import Base, make_engine
from points.distribution import CitusUpgrade

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ["POINTS_DATABASE_URL"]
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild tables; with foreign keys on, dropping the old copy of a
        # referenced table fails on a populated database. Switch them off outside the
        # transaction (SQLite ignores the pragma inside one) and check the result afterwards.
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        # Rows already broken before migrating (a tampered database, say) are not the
        # migration's doing: `points verify` names them; only new breakage stops a migration.
        before = _broken_foreign_keys(connection) if sqlite else set()
        # On a Citus coordinator whose tables are already distributed, new tables, keys and
        # unique indexes are made to fit the cluster in this same transaction (decision 0025).
        citus = None if sqlite else CitusUpgrade.needed(connection)
        if citus is not None:
            citus.install(context.get_context())
        context.run_migrations()
        if citus is not None:
            citus.finish()
        if sqlite:
            broken = sorted(_broken_foreign_keys(connection) - before)
            if broken:
                raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
    if sqlite:
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _broken_foreign_keys(connection) -> set:
    return {tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")}


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_migrations_online()
