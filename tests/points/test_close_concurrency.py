"""A quarter close racing the shop counter: redemptions from the very lots being expired.

The close locks the period's lots (with their balances) before the village's chain lock, the
same order as every other ledger write, then expires them set-based from the locked balances.
Whoever gets a lot first wins it: a redemption before the close lowers what expires, one after
finds the lot closed and is refused. Either way each point is spent or expired exactly once,
no lot goes below zero, nothing deadlocks, and a rerun of the close changes nothing.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from points import cycles, ledger
from points.errors import InsufficientPointsError
from points.ledger.verify import verify
from points.models import Account, JournalEntry, Period, Scheme
from tests.factories import make_household, make_scheme, make_village
from tests.points.test_cycles import bj
from tests.points.test_ledger_concurrency import race, wide_factory  # noqa: F401

pytestmark = pytest.mark.slow

HOMES, EARNED, PRICE = 40, 20, 5
CLOSE_AT = bj(2027, 1, 1, 0, 5)


def test_redemptions_racing_a_close_are_spent_or_expired_exactly_once(wide_factory):  # noqa: F811
    with wide_factory() as s:
        village = make_village(s)
        scheme = make_scheme(s, village, close_policy="reset")
        homes = [make_household(s, village, members=1).id for _ in range(HOMES)]
        ledger.post_awards(
            s,
            scheme=scheme,
            lines=[ledger.AwardLine(h, EARNED, f"a:{h}") for h in homes],
            actor_id=None,
            now=bj(2026, 12, 1, 9),
        )
        s.commit()
        scheme_id, code = scheme.id, village.code
    # Thread 0 closes the quarter; threads 1..15 each buy twice at the counter (a household
    # of their own, and the household of thread i+1: two counters on one lot), each purchase
    # its own transaction as at a real counter.
    buyers = 15

    def work(s, i):
        scheme = s.get(Scheme, scheme_id)
        if i == 0:
            return cycles.close_period(s, scheme=scheme, period="2026-Q4", now=CLOSE_AT).id
        done = []
        for n, home in enumerate((homes[i], homes[i % buyers + 1])):
            try:
                ledger.spend(
                    s,
                    scheme=scheme,
                    subject_id=home,
                    points=PRICE,
                    idem_key=f"shop:{i}:{n}",
                    actor_id=None,
                    now=bj(2026, 12, 31, 23, 59),
                )
                s.commit()
                done.append(home)
            except InsufficientPointsError:
                s.rollback()  # the close got there first: the lot is closed
        return done

    results, errors = race(wide_factory, work, n=buyers + 1)
    assert errors == {}, errors
    spent = [h for i in range(1, buyers + 1) for h in results[i]]

    with wide_factory() as s:
        period = s.execute(
            select(Period).where(Period.scheme_id == scheme_id, Period.key == "2026-Q4")
        ).scalar_one()
        assert period.status == "closed"
        assert period.lots_closed == HOMES
        # Every point earned was either spent at the counter or expired by the close.
        assert period.points_expired == HOMES * EARNED - PRICE * len(spent)
        lots = s.execute(
            select(Account.balance, Account.closed_at).where(
                Account.scheme_id == scheme_id, Account.kind == "lot"
            )
        ).all()
        assert len(lots) == HOMES
        assert all(balance == 0 and closed is not None for balance, closed in lots)
        expiries = s.execute(select(func.count()).where(JournalEntry.kind == "expiry")).scalar_one()
        assert expiries == HOMES  # no household spent all 20 points: each lot expired once
        assert verify(s, village_code=code).breaches == []

        # A rerun closes nothing twice, and the close's entries replay through the general
        # path (same keys and request hashes): no new entry, no refusal.
        scheme = s.get(Scheme, scheme_id)
        again = cycles.close_period(s, scheme=scheme, period="2026-Q4", now=bj(2027, 1, 2))
        assert (again.lots_closed, again.points_expired) == (HOMES, period.points_expired)
        lot_ids = list(
            s.execute(
                select(Account.id)
                .where(Account.scheme_id == scheme_id, Account.kind == "lot")
                .order_by(Account.id)
            ).scalars()
        )
        first = ledger.expire_lots(s, lot_ids=lot_ids, now=bj(2027, 1, 2))
        assert all(e is not None for e in first)
        assert (
            s.execute(select(func.count()).where(JournalEntry.kind == "expiry")).scalar_one()
            == HOMES
        )
        s.commit()
        assert verify(s, village_code=code).breaches == []
