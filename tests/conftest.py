"""Fixtures: every test gets its own freshly migrated database (SQLite, or PostgreSQL when
POINTS_TEST_DATABASE_URL is set), copied from a template that was built by `alembic upgrade`
(on PostgreSQL, copied once per worker and reset to the template's exact rows and sequences
between tests: see _Databases; decision 0031).

Also: no test can hang (child processes are bounded by POINTS_TEST_TIMEOUT, see
tests/processes.py, and pytest-timeout stops any test after a multiple of it), and Hypothesis
never fails a correct build for being slow."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import make_url, text

import points.auth.passwords
from api.migrate import upgrade
from points.db import make_engine, make_sessionmaker
from points.distribution import GLOBAL, TABLES
from tests import processes

# Cheap scrypt in tests (the cost is stored in each hash, so checking still works): sign-in
# happens hundreds of times per run and the production cost is ~50 ms a hash.
points.auth.passwords._N = 2**10


PG_URL = os.environ.get("POINTS_TEST_DATABASE_URL")
# On a Citus coordinator (scripts/citus-cluster.sh test): one database, distributed once per run
# and emptied before each test, since a new database would need the extension on every node.
CITUS = bool(PG_URL) and os.environ.get("POINTS_DISTRIBUTED") == "citus"
# Every test connection on one PostgreSQL server (this process, its workers and every child:
# servers, `points` commands, pg_dump) commits without waiting for the WAL to reach the disk:
# a session setting, for tests only; the server is never crashed, so nothing committed is
# lost. The demo builds commit claim by claim (tests/points/test_demo.py 24-27 s -> 18-19 s).
if PG_URL and not CITUS:
    _options = os.environ.get("PGOPTIONS", "")
    if "synchronous_commit" not in _options:
        os.environ["PGOPTIONS"] = f"{_options} -c synchronous_commit=off".strip()
# With a revision here, that database is first migrated to it and distributed, then upgraded to
# head on the cluster (decision 0025), so the suites run on an upgraded county.
CITUS_UPGRADE_FROM = os.environ.get("POINTS_CITUS_UPGRADE_FROM", "") if CITUS else ""
# A fixed, ordinary moment: Wednesday 2026-11-25 13:00 in Beijing.
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)

# Hypothesis: as many examples as each test asks for, but no deadline and no health check that
# measures speed, so a loaded or slow machine never fails a correct build.
settings.register_profile(
    "points",
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "points"))

# The last resort against a hang that no bounded wait catches: pytest-timeout stops any test
# after this long (a test may start several children, each bounded by TIMEOUT on its own).
TEST_CEILING = 5 * processes.TIMEOUT


# The modules that take longest (worker seconds of a whole run, docs/performance.md "Test suite"),
# longest first. pytest-xdist hands out whole modules (--dist loadscope) in collection order
# (--no-loadscope-reorder), so these start first and the run does not end with one worker on a
# three-minute module while the other idles; the rest follow, most tests first, and the run
# ends on small modules. Only the order changes: every test runs, on its own database, as before.
LONGEST_FIRST = (
    "tests/api/test_schemathesis.py",
    "tests/api/test_cli.py",
    "tests/api/test_schemathesis_roles.py",
    "tests/points/test_ledger_tamper.py",
    "tests/points/test_ledger_stateful.py",
    "tests/api/test_boards_api.py",
    "tests/api/test_cycles_cli.py",
    "tests/web/test_admin_console.py",
    "tests/web/test_roles.py",
    "tests/api/test_authorization_matrix.py",
    "tests/points/test_village_move.py",
    "tests/api/test_roster.py",
    "tests/api/test_catalog_cli.py",
    "tests/api/test_backups_ops.py",
    "tests/points/test_demo.py",
    "tests/points/test_cycles_processes.py",
    "tests/points/test_boards_county.py",
    "tests/web/test_events.py",
    "tests/web/test_walkthrough.py",
    "tests/api/test_cards_pdf.py",
    "tests/test_security_lint.py",
)


def _longest_first(items: list) -> None:
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    order = sorted(modules, key=lambda m: (rank.get(m, len(rank)), -len(modules[m])))
    items[:] = [item for module in order for item in modules[module]]


def pytest_collection_modifyitems(config, items):
    """Longest modules first (see LONGEST_FIRST); give every test the ceiling, unless --timeout
    (or a test's own marker) says otherwise."""
    _longest_first(items)
    if not config.pluginmanager.hasplugin("timeout") or config.getoption("timeout") is not None:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_CEILING))


def pytest_configure(config):
    if CITUS and (getattr(config.option, "numprocesses", None) or 0) > 1:
        raise pytest.UsageError("on Citus the tests share one database: run them with -n 0")
    # One screenshot folder for the whole run (tests/web fills it), named here, before pytest-xdist
    # starts its workers: they inherit the environment, so they all write to the same folder.
    if not hasattr(config, "workerinput"):
        name = f"points-shots-{uuid.uuid4().hex[:8]}"
        os.environ.setdefault("POINTS_SCREENSHOTS", os.path.join(tempfile.gettempdir(), name))


def pytest_terminal_summary(terminalreporter):
    folder = os.environ.get("POINTS_SCREENSHOTS", "")
    if os.path.isdir(folder) and os.listdir(folder):
        terminalreporter.write_line(f"browser screenshots: {folder}")


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test():
    """Kill any child process a test started and left running (it failed, or forgot)."""
    yield
    processes.kill_all()


# PostgreSQL: a database's shape, everything a test could change short of its rows (schemas,
# tables, columns, defaults, constraints, indexes, triggers and whether they are enabled,
# functions, rules, types, extensions, sequences' definitions, settings), by object id, so an
# object dropped and made again counts as changed. A copy of the template has the template's ids.
_SYSTEM = (
    "('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)"
)
_SHAPE = f"""
SELECT md5(string_agg(line, ',' ORDER BY line)) FROM (
  SELECT concat_ws(' ', 'n', oid, nspname) AS line FROM pg_namespace
  UNION ALL SELECT concat_ws(' ', 'c', oid, relname, relnamespace, relkind, relpersistence,
      relrowsecurity, relforcerowsecurity, relhastriggers, relhasrules, relnatts, reltype,
      relreplident, relispartition, relacl::text)
    FROM pg_class WHERE relnamespace NOT IN {_SYSTEM}
  UNION ALL SELECT concat_ws(' ', 'a', attrelid, attnum, attname, atttypid, atttypmod, attnotnull,
      attisdropped, atthasdef, attgenerated, attidentity, attcollation)
    FROM pg_attribute WHERE attrelid >= 16384 AND attnum > 0
  UNION ALL SELECT concat_ws(' ', 'd', oid, adrelid, adnum, md5(adbin::text)) FROM pg_attrdef
  UNION ALL SELECT concat_ws(' ', 'k', oid, conname, conrelid, contype, condeferrable,
      condeferred, convalidated, conindid, confrelid, confupdtype, confdeltype, conkey::text,
      confkey::text, md5(conbin::text))
    FROM pg_constraint WHERE oid >= 16384
  UNION ALL SELECT concat_ws(' ', 'i', indexrelid, indrelid, indisunique, indisprimary, indisvalid,
      indisready, indimmediate, indkey::text, indclass::text, md5(indexprs::text),
      md5(indpred::text))
    FROM pg_index WHERE indexrelid >= 16384
  UNION ALL SELECT concat_ws(' ', 't', oid, tgrelid, tgname, tgfoid, tgtype, tgenabled,
      tgattr::text, md5(tgqual::text))
    FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT concat_ws(' ', 'p', oid, proname, pronamespace, md5(prosrc), provolatile,
      prosecdef, proconfig::text)
    FROM pg_proc WHERE oid >= 16384
  UNION ALL SELECT concat_ws(' ', 'v', oid, ev_class, ev_enabled, md5(ev_action::text))
    FROM pg_rewrite WHERE oid >= 16384
  UNION ALL SELECT concat_ws(' ', 'e', oid, extname, extversion) FROM pg_extension
  UNION ALL SELECT concat_ws(' ', 'g', oid, evtname, evtenabled) FROM pg_event_trigger
  UNION ALL SELECT concat_ws(' ', 's', setrole, setconfig::text) FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL SELECT concat_ws(' ', 'y', oid, typname, typnamespace, typtype) FROM pg_type
    WHERE oid >= 16384
  UNION ALL SELECT concat_ws(' ', 'u', oid, enumtypid, enumlabel, enumsortorder) FROM pg_enum
  UNION ALL SELECT concat_ws(' ', 'o', oid, polrelid, polname, polcmd, md5(polqual::text))
    FROM pg_policy
  UNION ALL SELECT concat_ws(' ', 'q', seqrelid, seqtypid, seqstart, seqincrement, seqmax,
      seqmin, seqcache, seqcycle)
    FROM pg_sequence
  UNION ALL SELECT concat_ws(' ', 'l', oid) FROM pg_largeobject_metadata
) lines
"""


class _Snapshot:
    """A PostgreSQL database's rows (a binary COPY of each table that has any) and sequences,
    read through `conn` (psycopg, autocommit), and the query that tells another database of
    the same shape whether it holds the same (`read`, `state`)."""

    def __init__(self, conn, tables: list[str], sequences: list[str]):
        self.tables, self.sequences = tables, sequences
        probes = ", ".join(f'EXISTS (SELECT FROM "{t}")' for t in tables)
        has_rows = conn.execute(f"SELECT ARRAY[{probes}]").fetchone()[0]
        self.rows: dict[str, bytes] = {}
        for table, full in zip(tables, has_rows, strict=True):
            if full:
                with conn.cursor().copy(f'COPY "{table}" TO STDOUT (FORMAT BINARY)') as copy:
                    self.rows[table] = b"".join(bytes(block) for block in copy)
        # per table: a digest of its rows if the snapshot has any, else whether it has rows
        columns = ", ".join(
            f"(SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM \"{t}\" r)"
            if t in self.rows
            else f"CASE WHEN EXISTS (SELECT FROM \"{t}\") THEN 'rows' END"
            for t in tables
        )
        values = ", ".join(f"pg_sequence_last_value('{s}'::regclass)" for s in sequences)
        self._read = f"SELECT ARRAY[{columns}]::text[], ARRAY[{values}]::bigint[]"
        self.state = self.read(conn)

    def read(self, conn) -> tuple[dict[str, str], dict[str, int | None]]:
        """Each table with rows (its digest, or 'rows' where the snapshot has none), and each
        sequence's last value (None: never used). A database of the same shape in the same
        state holds the same rows and hands out the same next ids."""
        tables, values = conn.execute(self._read).fetchone()
        return (
            {t: v for t, v in zip(self.tables, tables, strict=True) if v is not None},
            dict(zip(self.sequences, values, strict=True)),
        )


class _Databases:
    """Creates throwaway databases; on PostgreSQL each run's names are unique and dropped.

    On PostgreSQL (decision 0031) a test's database is not dropped after it (a DROP DATABASE
    forces a checkpoint: under load, most of a short test's time): it goes back to this
    worker's pool, reset to exactly the migrated template's rows and sequences (`_restore`,
    which checks the result), unless the test changed its shape (dropped a trigger, migrated,
    restored a dump): then it is dropped, and the next test gets a new copy of the template. A
    copy of another database of the run (`fresh(template)`, the API suite's world) is a pooled
    database given that database's rows and sequences."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory.mktemp("db")
        self.run = uuid.uuid4().hex[:8]
        self.created: list[str] = []
        self.pool: list[str] = []  # PostgreSQL: databases in the template's state, free
        self.snapshots: dict[str, _Snapshot] = {}  # PostgreSQL: name -> rows, for fresh(name)
        if PG_URL:
            self.admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=None)
        self.template = self._build_template()

    def _url_for(self, name: str) -> str:
        if PG_URL:
            return make_url(make_engine(PG_URL).url).set(database=name).render_as_string(False)
        return f"sqlite:///{self.tmp / (name + '.db')}"

    def _build_template(self) -> str:
        if CITUS:
            return self._build_citus()
        name = f"points_t_{self.run}_tpl"
        if PG_URL:
            self._pg(f'CREATE DATABASE "{name}"')
        url = self._url_for(name)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        if PG_URL:
            with self._connect(name) as conn:
                self.shape = conn.execute(_SHAPE).fetchone()[0]
                tables = conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                ).fetchall()
                sequences = conn.execute(
                    "SELECT oid::regclass::text FROM pg_class WHERE relkind = 'S' "
                    "AND relnamespace = 'public'::regnamespace ORDER BY 1"
                ).fetchall()
                self.snapshots[name] = _Snapshot(
                    conn, [t for (t,) in tables], [s for (s,) in sequences]
                )
        return name

    def _connect(self, name: str):
        """A psycopg connection (autocommit) to database `name`."""
        url = make_url(PG_URL).set(database=name, drivername="postgresql")
        return self.admin.dialect.loaded_dbapi.connect(url.render_as_string(False), autocommit=True)

    def _build_citus(self) -> str:
        """Drop whatever an earlier run left, then migrate and distribute (POINTS_DISTRIBUTED)."""
        with self.admin.connect() as conn:
            for sql in (
                "SELECT 'DROP TABLE IF EXISTS ' || string_agg(quote_ident(tablename), ', ') "
                "|| ' CASCADE' FROM pg_tables WHERE schemaname = 'public' HAVING count(*) > 0",
                "SELECT 'DROP FUNCTION ' || string_agg(oid::regprocedure::text, ', ') "
                "FROM pg_proc WHERE pronamespace = 'public'::regnamespace HAVING count(*) > 0",
            ):
                drop = conn.execute(text(sql)).scalar()
                if drop:
                    conn.execute(text(drop))
        engine = make_engine(PG_URL)
        if CITUS_UPGRADE_FROM:
            upgrade(engine, CITUS_UPGRADE_FROM)  # a county distributed at that revision ...
        upgrade(engine)  # ... then `points migrate` to head on the distributed database
        with engine.connect() as conn:
            self.tables = list(
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version' ORDER BY 1"
                    )
                ).scalars()
            )
        engine.dispose()
        self.shape = self._citus_shape()
        return make_url(PG_URL).database

    def _citus_shape(self) -> tuple:
        """The triggers and foreign keys: tamper tests drop some, and then the schema is rebuilt."""
        with self.admin.connect() as conn:
            return tuple(
                conn.execute(
                    text(
                        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal UNION ALL "
                        "SELECT conname FROM pg_constraint WHERE connamespace = "
                        "'public'::regnamespace ORDER BY 1"
                    )
                ).scalars()
            )

    def _empty_citus(self) -> None:
        """Empty every table and restart the ids (rebuild the schema when a test dropped a guard)."""
        if self._citus_shape() != self.shape:
            self._build_citus()
            return
        # DELETE, not TRUNCATE (seconds on a cluster): with the session replication role set on
        # every node for this transaction, neither the append-only guards nor foreign keys fire.
        with self.admin.connect() as conn:
            conn.execute(text("SET citus.propagate_set_commands = 'local'"))
            conn.execute(text("BEGIN"))
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            # reference tables first: Citus refuses them after a parallel write to a distributed one
            for table in sorted(self.tables, key=lambda t: TABLES.get(t) != GLOBAL):
                conn.execute(text(f'DELETE FROM "{table}"'))
            conn.execute(text("COMMIT"))
            conn.execute(
                text(
                    "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname = 'public'"
                )
            )

    def fresh(self, template: str | None = None) -> str:
        """A new database copied from the migrated template, or from `template` (the URL of
        another database of this run that no connection is open on)."""
        if CITUS:
            self._empty_citus()
            return PG_URL
        source = self.name_of(template) if template else self.template
        if PG_URL and self.pool:
            name = self.pool.pop()
        else:
            name = f"points_t_{self.run}_{len(self.created)}"
            if PG_URL:
                self._pg(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            else:
                shutil.copyfile(self.tmp / f"{source}.db", self.tmp / f"{name}.db")
            self.created.append(name)
        if PG_URL and source != self.template:
            if source not in self.snapshots:
                with self._connect(source) as conn:
                    self.snapshots[source] = _Snapshot(conn, *self._layout)
            if not self._restore(name, self.snapshots[source], check=False):
                self._pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                raise RuntimeError(f"could not give {name} the rows of {source}")
        return self._url_for(name)

    @property
    def _layout(self) -> tuple[list[str], list[str]]:
        tpl = self.snapshots[self.template]
        return tpl.tables, tpl.sequences

    def _restore(self, name: str, snapshot: _Snapshot, *, check: bool = True) -> bool:
        """Give database `name` exactly `snapshot`'s rows and sequences. With `check` (after a
        test), first close every other connection to it and compare its shape with the
        template's; False when it differs (or anything fails): then it is to be dropped."""
        try:
            with self._connect(name) as conn:
                if check:
                    others = (
                        "FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                    ended = conn.execute(f"SELECT count(pg_terminate_backend(pid)) {others}")
                    if ended.fetchone()[0]:
                        for _ in range(500):
                            if not conn.execute(f"SELECT count(*) {others}").fetchone()[0]:
                                break
                            time.sleep(0.01)
                        else:
                            return False
                    if conn.execute(_SHAPE).fetchone()[0] != self.shape:
                        return False
                tables, sequences = snapshot.read(conn)
                wanted_tables, wanted_sequences = snapshot.state
                stale = [t for t, v in tables.items() if wanted_tables.get(t) != v]
                missing = [t for t, v in wanted_tables.items() if tables.get(t) != v]
                with conn.transaction():
                    # no trigger fires (the ledger's append-only guards, foreign keys)
                    conn.execute(
                        "; ".join(
                            ["SET LOCAL session_replication_role = replica"]
                            + [f'DELETE FROM "{table}"' for table in stale]
                        )
                    )
                    for table in missing:
                        with conn.cursor().copy(f'COPY "{table}" FROM STDIN (FORMAT BINARY)') as cp:
                            cp.write(snapshot.rows[table])
                moved = [
                    f"setval('{seq}', {value}, true)"
                    if value is not None
                    else f"setval('{seq}', (SELECT seqstart FROM pg_sequence "
                    f"WHERE seqrelid = '{seq}'::regclass), false)"
                    for seq, value in wanted_sequences.items()
                    if sequences[seq] != value
                ]
                if moved:
                    conn.execute(f"SELECT {', '.join(moved)}")
                return snapshot.read(conn) == snapshot.state
        except Exception:  # noqa: BLE001 — a database that cannot be reset is dropped instead
            return False

    @staticmethod
    def name_of(url: str) -> str:
        database = make_url(url).database or ""
        return database if PG_URL else os.path.splitext(os.path.basename(database))[0]

    def drop(self, url: str) -> None:
        """Done with a database of fresh(): on PostgreSQL it goes back to the pool, reset to the
        template's rows and sequences, or is dropped if the test changed its shape."""
        if not PG_URL or CITUS:
            return
        name = make_url(url).database
        processes.kill_all()  # no child of the test may write to it once it is reset
        self.snapshots.pop(name, None)
        if self._restore(name, self.snapshots[self.template]):
            self.pool.append(name)
        else:
            self._pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if CITUS:
            self.admin.dispose()
        elif PG_URL:
            for name in [*self.pool, self.template]:
                self._pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.admin.dispose()

    def _pg(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    dbs = _Databases(tmp_path_factory)
    yield dbs
    dbs.close()


@pytest.fixture
def db_url(databases):
    """The URL of a new, migrated, empty database for this test alone."""
    url = databases.fresh()
    yield url
    databases.drop(url)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def session(session_factory):
    """A session on the test's database; tests commit like the edge does."""
    with session_factory() as s:
        yield s


@pytest.fixture
def now():
    return NOW
