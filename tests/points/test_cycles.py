"""Periods close once, by their scheme's policy, at chosen times: on time, after downtime, twice."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import and_, func, select

from points import cycles, ledger
from points.cycles import leases
from points.ledger.verify import verify
from points.models import Account, CycleRun, JournalEntry, Period, Posting
from points.periods import LOCAL_TZ
from tests.factories import make_group, make_household, make_scheme, make_village


def bj(*args) -> datetime:
    """A Beijing wall-clock moment, e.g. bj(2027, 1, 1, 0, 5)."""
    return datetime(*args, tzinfo=LOCAL_TZ)


def award(session, scheme, home, points, when, key=None, category="德治"):
    return ledger.award(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=points,
        idem_key=key or f"a:{home.id}:{when.isoformat()}:{points}",
        actor_id=None,
        now=when,
        memo="好人好事",
        category=category,
    )


def spend(session, scheme, home, points, when):
    return ledger.spend(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=points,
        idem_key=f"s:{home.id}:{when.isoformat()}",
        actor_id=None,
        now=when,
    )


def expired_of(session, scheme, home) -> int:
    """Points moved from the household's lots to `expired`, over all time."""
    return -int(
        session.execute(
            select(func.coalesce(func.sum(Posting.amount), 0))
            .join(
                JournalEntry,
                and_(
                    JournalEntry.id == Posting.entry_id,
                    JournalEntry.village_id == Posting.village_id,
                ),
            )
            .join(
                Account,
                and_(Account.id == Posting.account_id, Account.village_id == Posting.village_id),
            )
            .where(
                JournalEntry.kind == "expiry",
                Account.scheme_id == scheme.id,
                Account.household_id == home.id,
            )
        ).scalar_one()
    )


def assert_verified(session):
    report = verify(session)
    assert report.ok, report.breaches


@pytest.fixture(autouse=True)
def period_jobs_only(monkeypatch):
    """Run only the period jobs: other modules' jobs (claims, boards) have tests of their own."""
    cycles.registered_jobs()  # import JOB_MODULES now, so they cannot register later
    only = {name: cycles.jobs._JOBS[name] for name in (cycles.PERIOD_CLOSE, cycles.PERIOD_OPEN)}
    monkeypatch.setattr(cycles.jobs, "_JOBS", only)


@pytest.fixture
def village(session):
    return make_village(session)


@pytest.fixture
def homes(session, village):
    group = make_group(session, village)
    return [make_household(session, village, group, members=1) for _ in range(3)]


def test_a_normal_quarter_end_expires_each_households_remainder_once(session, village, homes):
    scheme = make_scheme(session, village, close_policy="reset")
    a, b, c = homes
    award(session, scheme, a, 50, bj(2026, 11, 3, 9))
    award(session, scheme, b, 30, bj(2026, 12, 30, 9))
    spend(session, scheme, a, 20, bj(2026, 12, 31, 16))
    session.commit()

    # A minute before midnight on New Year's Eve nothing closes; the quarter is opened.
    early = cycles.reconcile(session, now=bj(2026, 12, 31, 23, 59))
    assert [(r.item.job, r.status) for r in early.results] == [("period_open", "done")]
    assert ledger.get_balance(session, scheme=scheme, subject_id=a.id).available == 30

    report = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    session.commit()
    assert [(r.item.job, r.item.key, r.status) for r in report.results] == [
        ("period_close", "household:2026-Q4", "done")
    ]
    assert report.done[0].detail == {"lots": 2, "expired": 60, "policy": "reset"}
    assert expired_of(session, scheme, a) == 30 and expired_of(session, scheme, b) == 30
    assert expired_of(session, scheme, c) == 0
    for home in homes:
        assert ledger.get_balance(session, scheme=scheme, subject_id=home.id).available == 0
    # Score is not balance: the quarter's score still counts every award.
    assert ledger.period_score(session, scheme=scheme, subject_id=a.id, period="2026-Q4") == 50
    periods = dict(session.execute(select(Period.key, Period.status)).all())
    assert periods == {"2026-Q4": "closed", "2027-Q1": "open"}
    closed = session.execute(select(Period).where(Period.key == "2026-Q4")).scalar_one()
    assert closed.closed_at == bj(2027, 1, 1, 0, 5)
    assert (closed.lots_closed, closed.points_expired) == (2, 60)
    keys = session.execute(
        select(JournalEntry.idem_key).where(JournalEntry.kind == "expiry")
    ).scalars()
    assert all(k.startswith("close:") and k.endswith(":2026-Q4") for k in keys)
    assert_verified(session)

    again = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 10))
    assert again.results == []


def test_downtime_from_the_28th_to_the_3rd_closes_the_quarter_once(session, village, homes):
    scheme = make_scheme(session, village, close_policy="reset")
    for i, home in enumerate(homes):
        award(session, scheme, home, 10 * (i + 1), bj(2026, 12, 27, 10))
    cycles.reconcile(session, now=bj(2026, 12, 28, 8))
    session.commit()
    # The server is off until 3 January; at start-up it catches up.
    report = cycles.reconcile(session, now=bj(2027, 1, 3, 7, 30))
    session.commit()
    assert [(r.item.key, r.status) for r in report.results] == [("household:2026-Q4", "done")]
    for i, home in enumerate(homes):
        assert expired_of(session, scheme, home) == 10 * (i + 1)
    entries = session.execute(select(JournalEntry).where(JournalEntry.kind == "expiry")).scalars()
    assert {e.created_at for e in entries} == {bj(2027, 1, 3, 7, 30)}
    for later in (bj(2027, 1, 3, 7, 35), bj(2027, 1, 4, 7, 30)):
        assert cycles.reconcile(session, now=later).results == []
    assert session.execute(select(func.count()).select_from(CycleRun)).scalar_one() == 2
    assert_verified(session)


def test_catch_up_over_several_quarters_closes_each_in_order(session, village, homes):
    scheme = make_scheme(session, village, close_policy="reset")
    award(session, scheme, homes[0], 40, bj(2026, 8, 1, 10))
    award(session, scheme, homes[0], 15, bj(2026, 11, 1, 10))
    report = cycles.reconcile(session, now=bj(2027, 4, 2, 9))
    session.commit()
    assert [r.item.key for r in report.done] == [
        "household:2026-Q3",
        "household:2026-Q4",
        "household:2027-Q1",
    ]
    assert [r.detail["expired"] for r in report.done] == [40, 15, 0]
    assert (
        session.execute(select(Period.status).where(Period.key == "2027-Q2")).scalar_one() == "open"
    )
    assert_verified(session)


def test_carry_closes_the_period_and_moves_nothing(session, village, homes):
    scheme = make_scheme(session, village, close_policy="carry")
    award(session, scheme, homes[0], 25, bj(2026, 11, 3, 9))
    award(session, scheme, homes[0], 5, bj(2027, 2, 3, 9))
    for when in (bj(2027, 1, 1, 0, 5), bj(2027, 4, 1, 0, 5)):
        cycles.reconcile(session, now=when)
    session.commit()
    balance = ledger.get_balance(session, scheme=scheme, subject_id=homes[0].id)
    assert balance.available == 30 and dict(balance.lots) == {"2026-Q4": 25, "2027-Q1": 5}
    assert expired_of(session, scheme, homes[0]) == 0
    statuses = dict(session.execute(select(Period.key, Period.status)).all())
    assert statuses == {"2026-Q4": "closed", "2027-Q1": "closed", "2027-Q2": "open"}
    assert_verified(session)


def test_expire_after_two_periods_lets_a_lot_live_through_the_next_quarter(session, village, homes):
    scheme = make_scheme(session, village, close_policy="expire_after_n", expire_after_n=2)
    a, b, _ = homes
    award(session, scheme, a, 40, bj(2026, 8, 10, 9))  # Q3
    award(session, scheme, a, 30, bj(2026, 11, 10, 9))  # Q4
    award(session, scheme, b, 12, bj(2026, 11, 10, 9))  # Q4
    spend(session, scheme, a, 10, bj(2026, 11, 20, 9))  # oldest first: from the Q3 lot
    scores = {
        p: ledger.period_score(session, scheme=scheme, subject_id=a.id, period=p)
        for p in ("2026-Q3", "2026-Q4")
    }

    cycles.reconcile(session, now=bj(2026, 10, 1, 0, 5))  # Q3 closes: nothing is old enough
    assert expired_of(session, scheme, a) == 0
    cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))  # Q4 closes: the Q3 lot expires
    assert expired_of(session, scheme, a) == 30
    assert dict(ledger.get_balance(session, scheme=scheme, subject_id=a.id).lots) == {"2026-Q4": 30}
    cycles.reconcile(session, now=bj(2027, 4, 1, 0, 5))  # Q1 closes: the Q4 lots expire
    session.commit()
    assert expired_of(session, scheme, a) == 60 and expired_of(session, scheme, b) == 12
    after = {
        p: ledger.period_score(session, scheme=scheme, subject_id=a.id, period=p)
        for p in ("2026-Q3", "2026-Q4")
    }
    assert after == scores == {"2026-Q3": 40, "2026-Q4": 30}
    assert_verified(session)


def test_expiry_cutoff_by_policy(session, village):
    cases = {
        ("reset", None): "2026-Q4",
        ("carry", None): None,
        ("expire_after_n", 1): "2026-Q4",
        ("expire_after_n", 2): "2026-Q3",
        ("expire_after_n", 4): "2026-Q1",
    }
    for (policy, n), expected in cases.items():
        scheme = make_scheme(
            session, village, code=f"s-{policy}-{n}", close_policy=policy, expire_after_n=n
        )
        assert cycles.expiry_cutoff(scheme, "2026-Q4") == expected, (policy, n)


def test_reset_leaves_what_a_household_owes_and_scores_untouched(session, village, homes):
    scheme = make_scheme(session, village, close_policy="reset", base_score=100)
    home = homes[0]
    award(session, scheme, home, 10, bj(2026, 10, 5, 9))
    ledger.deduct(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=25,
        idem_key="d1",
        actor_id=None,
        now=bj(2026, 10, 6, 9),
        category="法治",
    )
    award(session, scheme, home, 8, bj(2026, 11, 5, 9))  # settles 8 of the 15 owed
    before = ledger.period_score(session, scheme=scheme, subject_id=home.id, period="2026-Q4")
    cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    session.commit()
    balance = ledger.get_balance(session, scheme=scheme, subject_id=home.id)
    assert (balance.available, balance.owed) == (0, -7)
    assert expired_of(session, scheme, home) == 0
    assert before == 100 + 10 - 25 + 8
    assert (
        ledger.period_score(session, scheme=scheme, subject_id=home.id, period="2026-Q4") == before
    )
    assert_verified(session)


def test_a_lot_credited_after_its_period_closed_expires_at_the_next_close(session, village, homes):
    scheme = make_scheme(session, village, close_policy="reset")
    award(session, scheme, homes[0], 10, bj(2026, 11, 5, 9))
    cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    # A late posting dated in the closed quarter lands in a new 2026-Q4 lot of another home.
    award(session, scheme, homes[1], 7, bj(2026, 12, 31, 12))
    cycles.reconcile(session, now=bj(2027, 4, 1, 0, 5))
    session.commit()
    assert expired_of(session, scheme, homes[1]) == 7
    assert_verified(session)


def test_monthly_schemes_close_every_month(session, village, homes):
    scheme = make_scheme(session, village, close_policy="reset", period_kind="month")
    award(session, scheme, homes[0], 9, bj(2026, 11, 5, 9))
    award(session, scheme, homes[0], 4, bj(2026, 12, 5, 9))
    report = cycles.reconcile(session, now=bj(2026, 12, 1, 0, 1))
    assert [r.item.key for r in report.done] == ["household:2026-11"]
    report = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 1))
    assert [r.item.key for r in report.done] == ["household:2026-12"]
    assert expired_of(session, scheme, homes[0]) == 13
    session.commit()
    assert_verified(session)


def test_a_scheme_without_points_only_opens_its_current_period(session, village):
    make_scheme(session, village, close_policy="reset")
    report = cycles.reconcile(session, now=bj(2026, 11, 25, 13))
    assert [(r.item.job, r.item.key) for r in report.done] == [("period_open", "household:2026-Q4")]
    assert cycles.reconcile(session, now=bj(2026, 11, 25, 14)).results == []
    # From then on the quarter closes even though nobody earned anything in it.
    report = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    assert [(r.item.job, r.detail) for r in report.done] == [
        ("period_close", {"lots": 0, "expired": 0, "policy": "reset"})
    ]


def test_villages_are_filtered_and_listed_separately(session, homes, village):
    other = make_village(session)
    scheme_a = make_scheme(session, village, close_policy="reset")
    scheme_b = make_scheme(session, other, close_policy="reset")
    award(session, scheme_a, homes[0], 5, bj(2026, 11, 5, 9))
    home_b = make_household(session, other)
    award(session, scheme_b, home_b, 6, bj(2026, 11, 5, 9))
    report = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5), village_id=other.id)
    assert {r.item.village_id for r in report.results} == {other.id}
    assert (
        expired_of(session, scheme_a, homes[0]) == 0 and expired_of(session, scheme_b, home_b) == 6
    )
    views = cycles.list_periods(session, village_id=village.id, now=bj(2027, 1, 1, 0, 5))
    assert [(v.key, v.status) for v in views] == [("2026-Q4", "due"), ("2027-Q1", "open")]


def test_a_registered_job_runs_once_in_order_and_a_failure_is_isolated(
    session, village, homes, monkeypatch
):
    scheme = make_scheme(session, village, close_policy="reset")
    award(session, scheme, homes[0], 5, bj(2026, 11, 5, 9))
    ran: list[str] = []

    def due(session, now):
        return [
            cycles.WorkItem("test_board", village.id, "2026-12"),
            cycles.WorkItem("test_board", village.id, "boom"),
        ]

    def run(session, item, now):
        if item.key == "boom":
            award(session, scheme, homes[1], 99, now, key="from-the-failing-job")
            raise RuntimeError("board printer on fire")
        ran.append(item.key)
        return {"entries": 1}

    monkeypatch.setitem(
        cycles.jobs._JOBS, "test_board", cycles.Job("test_board", due, run, order=70)
    )
    report = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    assert [(r.item.job, r.item.key, r.status) for r in report.results] == [
        ("period_close", "household:2026-Q4", "done"),
        ("test_board", "2026-12", "done"),
        ("test_board", "boom", "failed"),
    ]
    assert "board printer on fire" in report.failed[0].error
    # The failed item left nothing behind: neither its entry nor its cycle_runs row.
    assert ledger.get_balance(session, scheme=scheme, subject_id=homes[1].id).available == 0
    session.commit()
    report = cycles.reconcile(session, now=bj(2027, 1, 1, 0, 10))
    assert [(r.item.key, r.status) for r in report.results] == [
        ("2026-12", "skipped"),
        ("boom", "failed"),
    ]
    assert ran == ["2026-12"]
    runs = session.execute(select(CycleRun.kind, CycleRun.key, CycleRun.status)).all()
    assert sorted(runs) == [
        ("period_close", "household:2026-Q4", "done"),
        ("test_board", "2026-12", "done"),
    ]
    assert_verified(session)


def test_the_lease_goes_to_one_holder_until_it_expires_or_is_released(session):
    t0 = bj(2026, 11, 25, 13)
    take = leases.take_lease
    assert take(session, name="scheduler", holder="a", now=t0, seconds=300)
    assert not take(
        session, name="scheduler", holder="b", now=t0 + timedelta(seconds=10), seconds=300
    )
    assert take(session, name="scheduler", holder="a", now=t0 + timedelta(seconds=200), seconds=300)
    # a renewed at +200 s: b still waits at +400 s, and gets it once a's lease ran out.
    assert not take(
        session, name="scheduler", holder="b", now=t0 + timedelta(seconds=400), seconds=300
    )
    assert take(session, name="scheduler", holder="b", now=t0 + timedelta(seconds=501), seconds=300)
    assert not take(
        session, name="scheduler", holder="a", now=t0 + timedelta(seconds=502), seconds=300
    )
    leases.release_lease(session, name="scheduler", holder="b")
    assert take(session, name="scheduler", holder="a", now=t0 + timedelta(seconds=503), seconds=300)
