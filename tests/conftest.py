"""Fixtures: every test gets its own freshly migrated database (SQLite, or PostgreSQL when
POINTS_TEST_DATABASE_URL is set), copied from a template that was built by `alembic upgrade`."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import make_url, text

import points.auth.passwords
from api.migrate import upgrade
from points.db import make_engine, make_sessionmaker

# Cheap scrypt in tests (the cost is stored in each hash, so checking still works): sign-in
# happens hundreds of times per run and the production cost is ~50 ms a hash.
points.auth.passwords._N = 2**10

PG_URL = os.environ.get("POINTS_TEST_DATABASE_URL")
# A fixed, ordinary moment: Wednesday 2026-11-25 13:00 in Beijing.
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


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
