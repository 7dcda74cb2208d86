"""Fixtures: every test gets its own freshly migrated database (SQLite, or PostgreSQL when
POINTS_TEST_DATABASE_URL is set), copied from a template that was built by `alembic upgrade`.

Also: no test can hang (child processes are bounded by POINTS_TEST_TIMEOUT, see
tests/processes.py, and pytest-timeout stops any test after a multiple of it), and Hypothesis
never fails a correct build for being slow."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import make_url, text

import points.auth.passwords
from api.migrate import upgrade
from points.db import make_engine, make_sessionmaker
from tests import processes

# Cheap scrypt in tests (the cost is stored in each hash, so checking still works): sign-in
# happens hundreds of times per run and the production cost is ~50 ms a hash.
points.auth.passwords._N = 2**10

PG_URL = os.environ.get("POINTS_TEST_DATABASE_URL")
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


def pytest_collection_modifyitems(config, items):
    """Give every test the ceiling, unless --timeout (or a test's own marker) says otherwise."""
    if not config.pluginmanager.hasplugin("timeout") or config.getoption("timeout") is not None:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_CEILING))


def pytest_configure(config):
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


class _Databases:
    """Creates throwaway databases; on PostgreSQL each run's names are unique and dropped."""

    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory.mktemp("db")
        self.run = uuid.uuid4().hex[:8]
        self.created: list[str] = []
        if PG_URL:
            self.admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=None)
        self.template = self._build_template()

    def _url_for(self, name: str) -> str:
        if PG_URL:
            return make_url(make_engine(PG_URL).url).set(database=name).render_as_string(False)
        return f"sqlite:///{self.tmp / (name + '.db')}"

    def _build_template(self) -> str:
        name = f"points_t_{self.run}_tpl"
        if PG_URL:
            self._pg(f'CREATE DATABASE "{name}"')
        url = self._url_for(name)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return name

    def fresh(self) -> str:
        name = f"points_t_{self.run}_{len(self.created)}"
        if PG_URL:
            self._pg(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        else:
            shutil.copyfile(self.tmp / f"{self.template}.db", self.tmp / f"{name}.db")
        self.created.append(name)
        return self._url_for(name)

    def drop(self, url: str) -> None:
        if PG_URL:
            self._pg(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def close(self) -> None:
        if PG_URL:
            self._pg(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
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
