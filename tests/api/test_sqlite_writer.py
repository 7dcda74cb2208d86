"""SQLite: one connection does all of a process's writing work, a pool the reading
(decision 0036). While a long write holds it, pages and exports still read at once; a record
waits its turn, and past the wait it is told the system is busy (503, nothing half-written),
then goes through when the writer is free."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from points.db import utcnow
from points.models import Claim
from tests.api.conftest import auth, make_app

pytestmark = pytest.mark.usefixtures("world")


@pytest.fixture
def app(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's writing connection")
    return make_app(db_url, SQLITE_WRITER_WAIT=0.5)


def _claims(app) -> int:
    with app.extensions["points.read_sessionmaker"]() as s:
        return s.scalar(select(func.count()).select_from(Claim))


def test_a_record_waits_for_the_writer_then_is_told_busy_and_later_goes_through(app, client, world):
    url = f"/api/v1/villages/{world.a.code}/claims"
    body = {
        "household_id": world.home1.id,
        "rule_code": "MEI-01",
        "occurred_on": utcnow().date().isoformat(),
    }
    before = _claims(app)
    held, release = threading.Event(), threading.Event()

    def long_write():  # as a quarter close would: the writing connection, in a transaction
        with app.extensions["points.sessionmaker"]() as s, s.begin():
            s.connection()
            held.set()
            release.wait(30)

    writer = threading.Thread(target=long_write)
    writer.start()
    try:
        assert held.wait(30)
        # Reading does not wait for the writer.
        page = client.get(
            f"/api/v1/villages/{world.a.code}/households", headers=auth(world.tokens["admin"])
        )
        assert page.status_code == 200
        busy = client.post(url, json=body, headers=auth(world.tokens["admin"]))
        assert busy.status_code == 503
        assert busy.json["error"] == "busy" and busy.headers["Retry-After"]
        assert "繁忙" in busy.json["message"]
        assert _claims(app) == before
    finally:
        release.set()
        writer.join(30)
    done = client.post(url, json=body, headers=auth(world.tokens["admin"]))
    assert done.status_code == 201, done.json
    assert _claims(app) == before + 1


def test_writing_work_shares_one_connection_and_reading_has_its_own_pool(app):
    writer = app.extensions["points.engine"]
    reader = app.extensions["points.read_engine"]
    assert writer is not reader
    assert writer.pool.size() == 1 and writer.pool._max_overflow == 0
    # Two readers at once while the writer is held: none of them waits.
    with writer.connect(), reader.connect(), reader.connect():
        pass
