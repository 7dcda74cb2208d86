"""On a Citus cluster: a county distributed at an older revision is upgraded by `points migrate`
to exactly the schema a fresh cluster gets (decision 0025), with no Citus branch in any migration.

Runs only against a Citus coordinator (scripts/citus-cluster.sh test); each case builds its own
database on every node of the cluster and drops it afterwards. The behaviour on an upgraded county
(the honours, events and party-events suites) is run by the same script with
POINTS_CITUS_UPGRADE_FROM set (tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import make_url, text

from api.migrate import upgrade
from points.db import make_engine
from tests.conftest import CITUS, PG_URL

pytestmark = pytest.mark.skipif(not CITUS, reason="needs a Citus coordinator")

# 0012: before honours (0013) and events (0014), whose new tables have foreign keys to households
# and residents; 0020: only 0021 is left, which replaces a unique constraint of the (then already
# distributed) event_attendances by two partial unique indexes without village_id.
STARTS = ["0012", "0020"]


class _ClusterDatabase:
    """A database with the citus extension on the coordinator and every worker."""

    def __init__(self) -> None:
        base = make_url(PG_URL)
        self.name = f"points_upgrade_{uuid.uuid4().hex[:8]}"
        admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=None)
        with admin.connect() as conn:
            workers = conn.execute(
                text(
                    "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' "
                    "AND groupid <> 0 ORDER BY nodeport"
                )
            ).all()
        admin.dispose()
        self.coordinator = (base.host, base.port or 5432)
        self.nodes = [self.coordinator, *workers]
        self.base = base
        for host, port in self.nodes:
            self._admin(host, port, f'CREATE DATABASE "{self.name}"')
            self._run(host, port, ["CREATE EXTENSION citus"])
        host, port = self.coordinator
        self._run(
            host,
            port,
            [f"SELECT citus_set_coordinator_host('{host}', {port})"]
            + [f"SELECT citus_add_node('{h}', {p})" for h, p in workers],
        )
        self.url = base.set(database=self.name).render_as_string(hide_password=False)

    def _url(self, host, port, database):
        return self.base.set(host=host, port=port, database=database).render_as_string(
            hide_password=False
        )

    def _admin(self, host, port, sql):
        engine = make_engine(
            self._url(host, port, "postgres"), isolation_level="AUTOCOMMIT", poolclass=None
        )
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def _run(self, host, port, statements):
        engine = make_engine(
            self._url(host, port, self.name), isolation_level="AUTOCOMMIT", poolclass=None
        )
        with engine.connect() as conn:
            for sql in statements:
                conn.execute(text(sql))
        engine.dispose()

    def drop(self) -> None:
        for host, port in reversed(self.nodes):
            self._admin(host, port, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _shape(url: str) -> dict[str, set]:
    """Everything the cluster's schema is made of, by name: columns, constraints, indexes,
    triggers, and how each table is distributed."""
    engine = make_engine(url)
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, "
        "coalesce(column_default, '') FROM information_schema.columns "
        "WHERE table_schema = 'public'",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
        "indexes": "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'public'::regnamespace",
        "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) "
        "FROM pg_trigger WHERE NOT tgisinternal",
        # every hash-distributed table in one colocation group, the others reference tables
        "distribution": "SELECT logicalrelid::regclass::text, partmethod, repmodel, "
        "colocationid = (SELECT min(colocationid) FROM pg_dist_partition WHERE partmethod = 'h') "
        "FROM pg_dist_partition",
    }
    with engine.connect() as conn:
        shape = {k: {tuple(r) for r in conn.execute(text(q))} for k, q in queries.items()}
    engine.dispose()
    return shape


@pytest.fixture(scope="module")
def fresh_shape(monkeypatch_module):
    db = _ClusterDatabase()
    try:
        engine = make_engine(db.url)
        upgrade(engine, distributed="citus")
        engine.dispose()
        yield _shape(db.url)
    finally:
        db.drop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POINTS_CITUS_SHARD_COUNT", "4")
        yield mp


@pytest.mark.parametrize("start", STARTS)
def test_a_county_distributed_at_an_older_revision_upgrades_to_the_fresh_schema(start, fresh_shape):
    db = _ClusterDatabase()
    try:
        engine = make_engine(db.url)
        upgrade(engine, start, distributed="citus")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_dist_partition")).scalar() > 0
        upgrade(engine, distributed="citus")  # `points migrate` on the distributed county
        engine.dispose()
        upgraded = _shape(db.url)
    finally:
        db.drop()
    for part, fresh in fresh_shape.items():
        assert sorted(upgraded[part] - fresh) == [] and sorted(fresh - upgraded[part]) == [], part
