"""Automatic (state-based) rules: evaluated by the scheduler once per subject and period, through
review and 公示 like any claim; exactly once in one process, after a restart, and with two
reconcilers at once (real processes, both databases)."""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from points import claims, cycles, ledger
from points.claims import ClaimInput, automatic
from points.claims.anomalies import anomaly_report
from points.ledger.verify import verify
from points.models import Claim, CycleRun
from points.models.claims import Channel, ClaimStatus
from tests.factories import adopt_catalog, make_household, make_scheme, make_user, make_village
from tests.points.test_cycles import bj
from tests.points.test_cycles_processes import finish, wait_until_blocked
from tests.processes import Child

ROOT = Path(__file__).resolve().parents[2]
BASE = {"unit": "time", "recorder_roles": ["admin", "recorder"], "subjects": ["household"]}
RULES = [
    dict(BASE, code="FZ-51", name="赌博", category="法治", sign=-1, points=10, review="always"),
    dict(BASE, code="MEI-51", name="乱倒垃圾", category="德治", sign=-1, points=5, review="always"),
    dict(BASE, code="ZZ-01", name="参加村民大会", category="自治", sign=1, points=1, review="never"),
    dict(BASE, code="AUTO-01", name="当月无违规", category="德治", sign=1, points=2,
         review="never", auto="month"),
    dict(BASE, code="AUTO-02", name="连续三个月无违法", category="法治", sign=1, points=5,
         review="never", auto="month", auto_months=3, auto_watch=["法治"]),
    dict(BASE, code="AUTO-03", name="本季度参加村民大会满 2 次", category="自治", sign=1,
         points=3, review="always", auto="quarter", auto_min_count=2, auto_watch=["ZZ-01"]),
]  # fmt: skip
# November ended, its 7 notice days and 7 more for review have passed; the quarter has not.
DEC_1 = bj(2026, 12, 15, 0, 5)


@pytest.fixture
def w(session):
    """Three households: one gambled in November, one littered in August, one attended twice."""

    class W:
        pass

    x = W()
    x.village = make_village(session)
    x.scheme = make_scheme(session, x.village, notice_days=7)
    adopt_catalog(session, x.scheme, RULES, now=bj(2026, 1, 1, 9))
    x.homes = [make_household(session, x.village) for _ in range(3)]
    x.recorder = make_user(session, x.village, "recorder")
    x.reviewer = make_user(session, x.village, "reviewer")

    def act(home, code, day, description="已核实"):
        now = bj(day.year, day.month, day.day, 9)
        item = ClaimInput(
            household_id=home.id, rule_code=code, occurred_on=day, description=description
        )
        c = claims.record(
            session, village=x.village, scheme=x.scheme, actor=x.recorder, item=item, now=now
        )
        if c.status == ClaimStatus.PENDING_REVIEW:
            claims.approve(session, claim=c, actor=x.reviewer, now=now)
        claims.post_claim(session, claim_id=c.id, now=now + timedelta(days=7))
        return c

    act(x.homes[0], "FZ-51", date(2026, 11, 3))
    act(x.homes[1], "MEI-51", date(2026, 8, 20))
    act(x.homes[2], "ZZ-01", date(2026, 10, 9))
    act(x.homes[2], "ZZ-01", date(2026, 11, 6))
    # The scheduler has run all year: every period before November's is already evaluated.
    evaluated_until(session, x.village, month="2026-10", quarter="2026-Q2")
    session.commit()
    return x


def evaluated_until(session, village, *, month: str, quarter: str) -> None:
    """Record the automatic rules' periods up to `month` / `quarter` as done, as a scheduler that
    ran until then would have left them."""
    done = [
        f"household:{code}:2026-{m:02d}"
        for code in ("AUTO-01", "AUTO-02")
        for m in range(1, 13)
        if f"2026-{m:02d}" <= month
    ]
    done += [f"household:AUTO-03:2026-Q{q}" for q in range(1, 5) if f"2026-Q{q}" <= quarter]
    for key in done:
        session.add(
            CycleRun(
                village_id=village.id,
                kind=automatic.JOB,
                key=key,
                status="done",
                started_at=bj(2026, 1, 1, 9),
            )
        )
    session.flush()


def auto_only(monkeypatch):
    cycles.registered_jobs()
    only = {automatic.JOB: cycles.jobs._JOBS[automatic.JOB]}
    monkeypatch.setattr(cycles.jobs, "_JOBS", only)


def auto_claims(session, code=None):
    q = select(Claim).where(Claim.channel == Channel.AUTOMATIC).order_by(Claim.id)
    rows = list(session.execute(q).scalars())
    return [c for c in rows if code is None or c.rule_id and _code(session, c) == code]


def _code(session, claim):
    from points.models import CatalogRule

    return session.get(CatalogRule, claim.rule_id).code


def test_november_is_evaluated_once_per_household_and_goes_on_notice(session, w, monkeypatch):
    auto_only(monkeypatch)
    # Two weeks after the month: before that, its last deductions may still be in review.
    early = cycles.pending(session, now=DEC_1 - timedelta(minutes=10))
    assert "household:AUTO-01:2026-11" not in {i.key for i in early}
    report = cycles.reconcile(session, now=DEC_1)
    session.commit()
    assert sorted((r.item.key, r.status) for r in report.results) == [
        ("household:AUTO-01:2026-11", "done"),
        ("household:AUTO-02:2026-11", "done"),
        ("household:AUTO-03:2026-Q3", "done"),
    ]
    got = {(_code(session, c), c.household_id): c for c in auto_claims(session)}
    h = [home.id for home in w.homes]
    # 当月无违规: the gambler is left out; the August litterer is clean in November.
    # 连续三个月无违法 (法治 only): littering is 德治, so only the gambler is left out.
    # Q3 had no meetings, so nobody earned AUTO-03 for Q3.
    assert sorted(got) == sorted(
        [("AUTO-01", h[1]), ("AUTO-01", h[2]), ("AUTO-02", h[1]), ("AUTO-02", h[2])]
    )
    claim = got[("AUTO-01", h[1])]
    assert claim.status == ClaimStatus.IN_NOTICE and claim.points == 2
    assert claim.recorded_by is None and claim.occurred_on == date(2026, 11, 30)
    assert claim.rule_note == "2026-11：每月自动评定：当月无扣分（任何项目）"
    notices = {c.id for c in claims.open_notices(session, village=w.village, now=DEC_1)}
    assert claim.id in notices
    # It posts like any claim when the notice ends: once.
    claims.post_due(session, now=DEC_1 + timedelta(days=7))
    assert ledger.get_balance(session, scheme=w.scheme, subject_id=h[1]).available == 2 + 5 - 5
    assert verify(session).ok

    # The anomaly report watches recorders; the scheduler is none of them.
    report = anomaly_report(session, village=w.village, month="2026-11")
    assert [r["claims"] for r in report["recorders"]] == [1]  # the grid worker's November award

    # The next tick, and a restarted scheduler, find nothing left to do.
    assert cycles.reconcile(session, now=DEC_1 + timedelta(minutes=2)).results == []
    session.commit()
    assert cycles.pending(session, now=DEC_1 + timedelta(days=3)) == []
    assert len(auto_claims(session)) == 4


def test_a_quarter_counts_attendance_and_goes_to_review(session, w, monkeypatch):
    auto_only(monkeypatch)
    report = cycles.reconcile(session, now=bj(2027, 1, 15, 0, 5))
    done = {r.item.key: r.detail for r in report.results}
    assert done["household:AUTO-03:2026-Q4"] == {"claims": 1, "points": 3}
    (claim,) = auto_claims(session, "AUTO-03")
    assert claim.household_id == w.homes[2].id
    assert claim.status == ClaimStatus.PENDING_REVIEW  # the rule says review: always
    assert "满 2 次（ZZ-01）" in claim.rule_note
    claims.approve(session, claim=claim, actor=w.reviewer, now=bj(2027, 1, 16, 9))
    assert claim.status == ClaimStatus.IN_NOTICE


def test_a_deduction_still_in_review_at_evaluation_does_not_count(session, w, monkeypatch):
    auto_only(monkeypatch)
    item = ClaimInput(
        household_id=w.homes[2].id, rule_code="MEI-51", occurred_on=date(2026, 11, 20),
        description="乱倒垃圾",
    )  # fmt: skip
    pending = claims.record(
        session,
        village=w.village,
        scheme=w.scheme,
        actor=w.recorder,
        item=item,
        now=bj(2026, 11, 20, 9),
    )
    assert pending.status == ClaimStatus.PENDING_REVIEW
    cycles.reconcile(session, now=DEC_1)
    assert w.homes[2].id in {c.household_id for c in auto_claims(session, "AUTO-01")}


def test_after_months_of_downtime_every_missed_period_is_caught_up_once(session, w, monkeypatch):
    auto_only(monkeypatch)
    # The scheduler stopped after evaluating July and comes back in mid-December.
    session.execute(delete(CycleRun).where(CycleRun.kind == automatic.JOB))
    evaluated_until(session, w.village, month="2026-07", quarter="2026-Q2")
    report = cycles.reconcile(session, now=DEC_1)
    session.commit()
    keys = [r.item.key for r in report.results if r.status == "done"]
    # Oldest first, each missed period once; nothing before the last evaluated period again.
    assert keys == [
        "household:AUTO-01:2026-08", "household:AUTO-02:2026-08",
        "household:AUTO-01:2026-09", "household:AUTO-02:2026-09",
        "household:AUTO-01:2026-10", "household:AUTO-02:2026-10",
        "household:AUTO-01:2026-11", "household:AUTO-02:2026-11",
        "household:AUTO-03:2026-Q3",
    ]  # fmt: skip
    h = [home.id for home in w.homes]
    got = sorted((_code(session, c), c.rule_note[:7], c.household_id) for c in auto_claims(session))
    expected = []
    for month in ("2026-08", "2026-09", "2026-10", "2026-11"):
        # 当月无违规: the August litterer misses August, the November gambler November.
        expected += [
            ("AUTO-01", month, home)
            for home in h
            if (month, home) not in {("2026-08", h[1]), ("2026-11", h[0])}
        ]
        # 连续三个月无违法 (法治): only the gambler misses, and only November.
        expected += [("AUTO-02", month, home) for home in h if (month, home) != ("2026-11", h[0])]
    assert got == sorted(expected)
    # Each missed month's award is dated in its month, so statements and boards place it there.
    aug = [c for c in auto_claims(session, "AUTO-01") if c.rule_note.startswith("2026-08")]
    assert {c.occurred_on for c in aug} == {date(2026, 8, 31)}

    # A restart, or the next tick, finds nothing left; a later month is evaluated alone.
    assert cycles.reconcile(session, now=DEC_1 + timedelta(hours=1)).results == []
    later = cycles.reconcile(session, now=bj(2027, 1, 15, 0, 5))
    assert sorted(r.item.key for r in later.results) == [
        "household:AUTO-01:2026-12", "household:AUTO-02:2026-12", "household:AUTO-03:2026-Q4",
    ]  # fmt: skip


def test_periods_before_an_automatic_rule_took_effect_are_never_back_filled(session, monkeypatch):
    auto_only(monkeypatch)
    village = make_village(session)
    scheme = make_scheme(session, village, notice_days=7)
    adopt_catalog(session, scheme, RULES, now=bj(2026, 10, 20, 9), adopted_on=date(2026, 10, 20))
    make_household(session, village)
    report = cycles.reconcile(session, now=DEC_1)
    # October (its last day under the new catalog) and November; never September or Q3.
    assert sorted(r.item.key for r in report.results) == [
        "household:AUTO-01:2026-10", "household:AUTO-01:2026-11",
        "household:AUTO-02:2026-10", "household:AUTO-02:2026-11",
    ]  # fmt: skip


# --- two reconcilers at once, as real processes ------------------------------------------------


def start(db_url: str, name: str, pause: bool = False) -> Child:
    args = [sys.executable, "-m", "tests.points.auto_child", db_url, DEC_1.isoformat(), name]
    return Child(
        [*args, "pause"] if pause else args,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=True,
    )


@pytest.mark.slow
def test_two_reconcilers_at_once_evaluate_each_rule_once(session, w, db_url):
    session.rollback()
    first = start(db_url, "auto-a", pause=True)
    first.expect_line("midway")
    second = start(db_url, "auto-b")
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        wait_until_blocked(session, "auto-b")  # b waits at a's uncommitted cycle_runs key
    first.send("go\n")
    a, b = finish(first), finish(second)
    assert sorted(status for _, status in a) == ["done", "done", "done"]
    # PostgreSQL: b listed the three items before a committed, waited at a's first key and
    # then found each key taken. SQLite: b's transaction queued behind a's, found nothing due.
    if postgres:
        assert sorted(status for _, status in b) == ["skipped", "skipped", "skipped"]
    else:
        assert b == []
    session.expire_all()
    assert len(auto_claims(session)) == 4
    n = session.scalar(
        select(func.count())
        .select_from(CycleRun)
        .where(CycleRun.kind == "rules_auto", CycleRun.started_at == DEC_1)
    )
    assert n == 3
    session.rollback()  # end the read: on SQLite even a read holds the database
    # A restart later: nothing again.
    third = start(db_url, "auto-c")
    assert finish(third) == []
    session.expire_all()
    assert len(auto_claims(session)) == 4
