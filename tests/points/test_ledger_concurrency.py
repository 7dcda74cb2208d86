"""Real concurrent clients on one database: double spends, duplicate keys, parallel villages.

Every thread has its own Session from one engine and commits like a request does. A barrier
releases them together so that the attempts overlap. On SQLite the engine serialises writers
(BEGIN IMMEDIATE + busy_timeout); on PostgreSQL the conditional UPDATEs, the unique keys and
the village's advisory lock do it.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from points import ledger
from points.db import make_engine, make_sessionmaker
from points.errors import AlreadyReversedError, InsufficientPointsError, PointsError
from points.ledger.verify import verify
from points.models import Account, JournalEntry, Posting
from tests.factories import make_household, make_scheme, make_village

THREADS = 16

pytestmark = pytest.mark.slow


@pytest.fixture
def wide_factory(db_url):
    """Sessions from one engine whose pool holds a connection for every thread at once."""
    engine = make_engine(db_url, pool_size=THREADS + 4, max_overflow=4, pool_timeout=60)
    yield make_sessionmaker(engine)
    engine.dispose()


def race(factory, work, n=THREADS):
    """Run work(session, i) in n threads released together; return (results, errors) by i.

    Each thread commits when work returns and rolls back when it raises, like a request.
    """
    barrier = threading.Barrier(n)
    results: dict[int, object] = {}
    errors: dict[int, BaseException] = {}

    def run(i):
        with factory() as session:
            barrier.wait(timeout=60)
            try:
                results[i] = work(session, i)
                session.commit()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted by the test
                session.rollback()
                errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors


def setup_village(factory, now, *, households=1, code=None, awards=()):
    """Create a village, a household scheme and households; post (household index, points,
    days before now) awards. Return (scheme, household ids, village code)."""
    with factory() as s:
        village = make_village(s, code=code)
        scheme = make_scheme(s, village)
        homes = [make_household(s, village, members=1).id for _ in range(households)]
        for n, (i, points, days_ago) in enumerate(awards):
            ledger.award(
                s,
                scheme=scheme,
                subject_id=homes[i],
                points=points,
                idem_key=f"seed:{n}",
                actor_id=None,
                now=now - timedelta(days=days_ago),
            )
        s.commit()
        return scheme, homes, village.code


def assert_verified(factory, code=None):
    with factory() as s:
        report = verify(s, village_code=code)
        assert report.breaches == []
        return report


def test_double_spend_only_what_the_household_can_afford(wide_factory, now):
    # 100 points in two lots (last quarter and this one); 16 clerks each try to spend 15:
    # exactly 6 can be paid (90), the other 10 are refused, nothing goes below zero.
    scheme, (home,), code = setup_village(wide_factory, now, awards=[(0, 45, 90), (0, 55, 0)])
    stop = threading.Event()
    lowest = []

    def watch():  # a reader sampling the lots while the race runs
        while not stop.is_set():
            with wide_factory() as s:
                lowest.append(
                    s.execute(
                        select(func.min(Account.balance)).where(Account.kind == "lot")
                    ).scalar_one()
                )

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results, errors = race(
            wide_factory,
            lambda s, i: (
                ledger.spend(
                    s,
                    scheme=scheme,
                    subject_id=home,
                    points=15,
                    idem_key=f"shop:{i}",
                    actor_id=None,
                    now=now,
                ).id
            ),
        )
    finally:
        stop.set()
        watcher.join()

    assert len(results) == 6, errors
    assert all(isinstance(e, InsufficientPointsError) for e in errors.values()), errors
    assert sorted(e.code for e in errors.values()) == ["insufficient_points"] * 10
    assert len(set(results.values())) == 6
    assert lowest and min(lowest) >= 0
    with wide_factory() as s:
        balance = ledger.get_balance(s, scheme=scheme, subject_id=home)
        assert (balance.available, balance.owed) == (10, 0)
        assert balance.lots == (("2026-Q3", 0), ("2026-Q4", 10))  # the oldest lot went first
        spent = s.execute(
            select(func.count()).where(JournalEntry.kind == "redemption")
        ).scalar_one()
        assert spent == 6
        # score is not balance: spending did not lower this quarter's score
        assert ledger.period_score(s, scheme=scheme, subject_id=home, period="2026-Q4") == 55
    report = assert_verified(wide_factory, code)
    assert report.heads[code][0] == 2 + 6


def test_spends_and_deductions_race_without_a_negative_lot(wide_factory, now):
    # Half the threads spend, half deduct: deductions never fail (the rest becomes owed),
    # spends fail only when short; whatever the order, the books must balance exactly.
    scheme, (home,), code = setup_village(wide_factory, now, awards=[(0, 50, 0)])

    def work(s, i):
        kind = ledger.spend if i % 2 else ledger.deduct
        kind(
            s, scheme=scheme, subject_id=home, points=7, idem_key=f"mix:{i}", actor_id=None, now=now
        )
        return kind.__name__

    results, errors = race(wide_factory, work)
    assert all(isinstance(e, InsufficientPointsError) for e in errors.values()), errors
    assert len(results) + len(errors) == THREADS
    assert Counter(results.values())["deduct"] == 8  # a deduction is never refused
    spends = Counter(results.values())["spend"]
    with wide_factory() as s:
        balance = ledger.get_balance(s, scheme=scheme, subject_id=home)
    assert balance.available >= 0 and balance.owed <= 0
    assert balance.net == 50 - 7 * (8 + spends)
    assert balance.owed == min(0, balance.net)
    assert_verified(wide_factory, code)


def test_one_key_sent_by_sixteen_clients_makes_one_entry(wide_factory, now):
    # A fresh household: the lot account does not exist yet either, so the threads also race
    # to create it.
    scheme, (home,), code = setup_village(wide_factory, now)
    results, errors = race(
        wide_factory,
        lambda s, i: (
            ledger.award(
                s,
                scheme=scheme,
                subject_id=home,
                points=12,
                idem_key="claim:77",
                actor_id=None,
                now=now,
                memo="扫雪",
            ).id
        ),
    )
    assert errors == {}
    assert len(results) == THREADS and len(set(results.values())) == 1
    with wide_factory() as s:
        entries = s.execute(select(JournalEntry).where(JournalEntry.idem_key == "claim:77")).all()
        assert len(entries) == 1 and entries[0][0].id == results[0]
        balance = ledger.get_balance(s, scheme=scheme, subject_id=home)
        assert (balance.available, balance.owed) == (12, 0)
        assert ledger.period_score(s, scheme=scheme, subject_id=home, period="2026-Q4") == 12
        lots = s.execute(select(func.count()).where(Account.kind == "lot")).scalar_one()
        assert lots == 1
    report = assert_verified(wide_factory, code)
    assert report.heads[code][0] == 1


def test_one_spend_key_sent_by_sixteen_clients_spends_once(wide_factory, now):
    scheme, (home,), code = setup_village(wide_factory, now, awards=[(0, 30, 0)])
    results, errors = race(
        wide_factory,
        lambda s, i: (
            ledger.spend(
                s,
                scheme=scheme,
                subject_id=home,
                points=20,
                idem_key="nonce:abc",
                actor_id=None,
                now=now,
            ).id
        ),
    )
    # the first spend leaves 10 points, yet every retry of that key gets the first answer
    assert errors == {}
    assert len(set(results.values())) == 1
    with wide_factory() as s:
        balance = ledger.get_balance(s, scheme=scheme, subject_id=home)
        assert balance.available == 10
    assert_verified(wide_factory, code)


def test_sixteen_clerks_reversing_one_entry_reverse_it_once(wide_factory, now):
    # Each clerk sends their own key: one reversal is posted, the others are told it was
    # already reversed (not a database error).
    scheme, (home,), code = setup_village(wide_factory, now, awards=[(0, 40, 0)])
    with wide_factory() as s:
        deduction = ledger.deduct(
            s, scheme=scheme, subject_id=home, points=25, idem_key="fine:1", actor_id=None, now=now
        )
        s.commit()
    results, errors = race(
        wide_factory,
        lambda s, i: (
            ledger.reverse(
                s,
                entry_id=deduction.id,
                reason="处罚有误",
                actor_id=None,
                now=now,
                idem_key=f"undo:{i}",
            ).id
        ),
    )
    assert len(results) == 1, (results, errors)
    assert all(isinstance(e, AlreadyReversedError) for e in errors.values()), errors
    with wide_factory() as s:
        balance = ledger.get_balance(s, scheme=scheme, subject_id=home)
        assert balance.available == 40
        assert ledger.period_score(s, scheme=scheme, subject_id=home, period="2026-Q4") == 40
    assert_verified(wide_factory, code)


def test_two_villages_append_in_parallel_and_keep_their_chains(wide_factory, now):
    # 8 threads per village, each posting 6 awards in 6 transactions to its own household.
    villages = {
        code: setup_village(wide_factory, now, households=THREADS // 2, code=code)
        for code in ("vA", "vB")
    }
    plan = [(code, i) for code in villages for i in range(THREADS // 2)]

    def work(s, n):
        code, i = plan[n]
        scheme, homes, _ = villages[code]
        for k in range(6):
            ledger.award(
                s,
                scheme=scheme,
                subject_id=homes[i],
                points=1 + k,
                actor_id=None,
                idem_key=f"{code}:{i}:{k}",
                now=now,
            )
            s.commit()
        return code

    results, errors = race(wide_factory, work)
    assert errors == {} and len(results) == THREADS
    report = assert_verified(wide_factory)
    with wide_factory() as s:
        for code, (scheme, homes, _) in villages.items():
            seqs = (
                s.execute(
                    select(JournalEntry.seq)
                    .where(JournalEntry.village_id == scheme.village_id)
                    .order_by(JournalEntry.seq)
                )
                .scalars()
                .all()
            )
            assert seqs == list(range(1, 8 * 6 + 1)), f"{code}: seq must be gapless"
            assert report.heads[code] == ledger.chain_head(s, scheme.village_id)
            for h in homes:
                assert ledger.get_balance(s, scheme=scheme, subject_id=h).available == 21
            # no posting of one village lands on an account of the other (asked within the
            # village, so that on a Citus cluster both tables are read on the village's worker)
            crossed = s.execute(
                select(func.count())
                .select_from(Posting)
                .where(Posting.village_id == scheme.village_id)
                .where(
                    Posting.account_id.not_in(
                        select(Account.id).where(Account.village_id == scheme.village_id)
                    )
                )
            ).scalar_one()
            assert crossed == 0


def test_racing_clients_leave_no_unexpected_error_types(wide_factory, now):
    """Mixed traffic on one household: every failure is a domain error with a stable code."""
    scheme, (home,), code = setup_village(wide_factory, now, awards=[(0, 20, 0)])

    def work(s, i):
        common = dict(scheme=scheme, subject_id=home, actor_id=None, now=now)
        if i % 4 == 0:
            return ledger.award(s, points=5, idem_key=f"a:{i}", **common).id
        if i % 4 == 1:
            return ledger.spend(s, points=9, idem_key=f"s:{i}", **common).id
        if i % 4 == 2:
            return ledger.deduct(s, points=3, idem_key=f"d:{i}", **common).id
        return ledger.award(s, points=5, idem_key="same-award", **common).id

    results, errors = race(wide_factory, work)
    assert all(isinstance(e, PointsError) for e in errors.values()), errors
    assert {e.code for e in errors.values()} <= {"insufficient_points"}
    with wide_factory() as s:
        balance = ledger.get_balance(s, scheme=scheme, subject_id=home)
        spends = sum(1 for i in results if i % 4 == 1)
        assert balance.net == 20 + 5 * 4 + 5 - 9 * spends - 3 * 4
        assert balance.available >= 0
    assert_verified(wide_factory, code)
