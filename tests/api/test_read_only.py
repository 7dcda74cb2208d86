"""SQLite: reading never waits for a writer. A household's statement and `points verify` answer
while another connection holds the write lock (a quarter close, a long import); a write still
queues behind it. PostgreSQL readers never take a write lock, so these are SQLite's tests."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading

import pytest
from sqlalchemy import make_url, select, text

from api.db import transaction
from points.db import ReadOnlyWriteError
from points.models import Village
from tests.api.conftest import auth
from tests.conftest import PG_URL
from tests.processes import run

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's write lock; PostgreSQL has none")


class WriteLock:
    """Another process-level connection in the middle of a write transaction."""

    def __init__(self, db_url: str):
        self.conn = sqlite3.connect(make_url(db_url).database, isolation_level=None, timeout=1)

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("UPDATE villages SET name = name || '（改）'")
        return self

    def __exit__(self, *exc):
        self.conn.execute("ROLLBACK")
        self.conn.close()


class Background:
    """fn running in a thread; `wait` returns its result, or None when not finished in time."""

    def __init__(self, fn):
        self.box = {}
        self.worker = threading.Thread(target=lambda: self.box.setdefault("r", fn()), daemon=True)
        self.worker.start()

    def wait(self, timeout: float):
        self.worker.join(timeout)
        return self.box.get("r")


def _in_thread(fn, timeout: float):
    return Background(fn).wait(timeout)


def test_a_statement_is_read_while_a_writer_holds_the_lock(app, client, world, db_url):
    headers = auth(world.tokens["admin"])
    url = f"/api/v1/villages/{world.a.code}/households/{world.home1.id}/statement"
    with WriteLock(db_url):
        response = _in_thread(lambda: client.get(url, headers=headers), timeout=10)
        assert response is not None, "the read waited for the writer"
        assert response.status_code == 200, response.json
        # The snapshot: the writer's uncommitted change is not seen, the seed award is.
        assert [line["amount"] for line in response.json["entries"]] == [30]
        # A write does queue behind the lock (and is not refused): it is still waiting.
        body = {"household_id": world.home2.id, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
        write = Background(
            lambda: app.test_client().post(
                f"/api/v1/villages/{world.a.code}/claims", json=body, headers=headers
            )
        )
        assert write.wait(1.5) is None
    # The writer is gone: the queued write goes through.
    done = write.wait(20)
    assert done is not None and done.status_code == 201, done and done.json


def test_verify_runs_while_a_writer_holds_the_lock(app, world, db_url):
    env = dict(os.environ, POINTS_DATABASE_URL=db_url)
    with WriteLock(db_url):
        result = run([sys.executable, "-m", "api.cli", "verify"], env=env)
    assert result.returncode == 0, result.stderr
    assert "village-a: head 1:" in result.stdout


def test_read_only_work_that_writes_is_refused_before_the_database(app, world):
    with pytest.raises(ReadOnlyWriteError), app.app_context(), transaction(read_only=True) as s:
        s.get(Village, world.a.id).name = "改名"
        s.flush()
    with app.app_context(), transaction() as s:
        assert s.scalar(select(Village.name).where(Village.id == world.a.id)) != "改名"
        assert s.execute(text("SELECT 1")).scalar_one() == 1
