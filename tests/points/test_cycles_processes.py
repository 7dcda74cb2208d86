"""Reconcilers as real processes: two at once close a period once; a killed one leaves nothing.

Each child runs tests/points/cycles_child.py against the test's database with a chosen clock.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import and_, func, select, text

from points import cycles, ledger
from points.db import on_citus
from points.ledger.verify import verify
from points.models import Account, CycleRun, JournalEntry, Period, Posting
from tests.factories import make_group, make_household, make_scheme, make_village
from tests.points.test_cycles import bj, period_jobs_only  # noqa: F401
from tests.processes import TIMEOUT, Child

ROOT = Path(__file__).resolve().parents[2]
CLOSE_AT = bj(2027, 1, 1, 0, 5)

pytestmark = pytest.mark.slow


def start_child(db_url: str, name: str, pause_after: int | None = None) -> Child:
    args = [sys.executable, "-m", "tests.points.cycles_child", db_url, CLOSE_AT.isoformat(), name]
    if pause_after is not None:
        args.append(str(pause_after))
    return Child(args, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdin=True)


def finish(child: Child) -> list[list[str]]:
    assert child.finish() == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def wait_for_midway(child: Child) -> None:
    child.expect_line("midway")


def populate(session, households: int) -> tuple[object, dict[int, int]]:
    """A reset scheme with `households` homes holding various Q4 balances; return them."""
    village = make_village(session)
    group = make_group(session, village)
    scheme = make_scheme(session, village, close_policy="reset")
    homes = [make_household(session, village, group, members=1) for _ in range(households)]
    lines = [
        ledger.AwardLine(h.id, 5 + i % 37, f"award:{h.id}", "好人好事", "德治")
        for i, h in enumerate(homes)
        if i % 11  # every 11th household earned nothing this quarter
    ]
    ledger.post_awards(session, scheme=scheme, lines=lines, actor_id=None, now=bj(2026, 11, 2, 9))
    for i, h in enumerate(homes):
        if i % 7 == 1 and i % 11:
            ledger.spend(
                session,
                scheme=scheme,
                subject_id=h.id,
                points=5,
                idem_key=f"spend:{h.id}",
                actor_id=None,
                now=bj(2026, 12, 20, 10),
            )
    session.commit()
    before = {
        h.id: ledger.get_balance(session, scheme=scheme, subject_id=h.id).available for h in homes
    }
    session.rollback()  # end the read: on SQLite even it holds the write lock (BEGIN IMMEDIATE)
    return scheme, before


def expired_by_household(session, scheme) -> dict[int, int]:
    rows = session.execute(
        select(Account.household_id, func.sum(Posting.amount))
        .join(
            Posting,
            and_(Posting.account_id == Account.id, Posting.village_id == Account.village_id),
        )
        .join(
            JournalEntry,
            and_(
                JournalEntry.id == Posting.entry_id, JournalEntry.village_id == Posting.village_id
            ),
        )
        .where(JournalEntry.kind == "expiry", Account.scheme_id == scheme.id)
        .group_by(Account.household_id)
    ).all()
    return {hid: -int(total) for hid, total in rows}


def count(session, model, *where) -> int:
    return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def assert_closed_once(session, scheme, before: dict[int, int]) -> None:
    session.expire_all()
    expired = expired_by_household(session, scheme)
    assert expired == {hid: bal for hid, bal in before.items() if bal}
    assert count(session, JournalEntry, JournalEntry.kind == "expiry") == sum(
        1 for bal in before.values() if bal
    )
    assert count(session, CycleRun, CycleRun.kind == "period_close") == 1
    assert session.execute(select(Period.status).where(Period.key == "2026-Q4")).scalar_one() == (
        "closed"
    )
    for hid in before:
        assert ledger.get_balance(session, scheme=scheme, subject_id=hid).available == 0
    report = verify(session)
    assert report.ok, report.breaches


def wait_until_blocked(session, name: str) -> None:
    """On PostgreSQL, wait until the backend of `name` waits on a lock (the UNIQUE key)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if on_citus(session):
            # The wait is on a worker (the coordinator's backend waits for the worker's reply):
            # Citus's cluster-wide view of lock waits; only the two reconcilers run here.
            waiting = session.execute(text("SELECT count(*) FROM citus_lock_waits")).scalar_one()
        else:
            waiting = session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = :n AND wait_event_type = 'Lock'"
                ),
                {"n": name},
            ).scalar_one()
        session.rollback()
        if waiting:
            return
        time.sleep(0.05)  # polls another process's state; no clock in the test depends on it
    pytest.fail(f"{name} never waited on the first reconciler's key")


def test_two_reconcilers_at_once_close_the_quarter_once(session, db_url):
    scheme, before = populate(session, 200)
    first = start_child(db_url, "reconciler-a", pause_after=100)
    wait_for_midway(first)  # a holds its cycle_runs row and half its expiries, uncommitted
    second = start_child(db_url, "reconciler-b")
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # b found the close due (a has not committed) and now waits at the UNIQUE key.
        wait_until_blocked(session, "reconciler-b")
    first.send("go\n")
    a, b = finish(first), finish(second)

    assert a == [["period_close", "household:2026-Q4", "done"]]
    # On PostgreSQL b reached the key and stopped there; on SQLite its whole transaction
    # queued behind a's (BEGIN IMMEDIATE) and then found nothing due.
    assert b == ([["period_close", "household:2026-Q4", "skipped"]] if postgres else [])
    assert_closed_once(session, scheme, before)


def test_a_reconciler_killed_midway_through_1000_households_leaves_nothing_and_the_rerun_finishes(
    session, db_url
):
    scheme, before = populate(session, 1000)
    child = start_child(db_url, "doomed", pause_after=500)
    wait_for_midway(child)
    child.proc.send_signal(signal.SIGKILL)
    assert child.finish() == -signal.SIGKILL

    # One transaction: nothing of the half-done close survived the crash.
    session.expire_all()
    assert count(session, JournalEntry, JournalEntry.kind == "expiry") == 0
    assert count(session, CycleRun) == 0
    assert verify(session).ok

    started = time.monotonic()
    report = cycles.reconcile(session, now=CLOSE_AT)
    session.commit()
    elapsed = time.monotonic() - started
    assert [(r.item.key, r.status) for r in report.results] == [("household:2026-Q4", "done")]
    assert report.done[0].detail["lots"] == sum(1 for i in range(1000) if i % 11)
    assert_closed_once(session, scheme, before)
    assert cycles.reconcile(session, now=CLOSE_AT).results == []
    print(f"closing 1000 households took {elapsed:.1f}s")
