"""Period statements add up: opening + movements = closing, chained period to period."""

from __future__ import annotations

import pytest

from points import cycles, ledger
from points.cycles.statements import period_statements
from points.errors import ConflictError, NotFoundError
from points.ledger.verify import verify
from tests.factories import make_group, make_household, make_scheme, make_village
from tests.points.test_cycles import award, bj, period_jobs_only, spend  # noqa: F401


@pytest.fixture
def world(session):
    village = make_village(session)
    group = make_group(session, village, "一组")
    homes = [make_household(session, village, group, members=1) for _ in range(4)]
    return village, homes


def test_a_reset_quarter_reads_as_the_household_expects(session, world):
    village, (a, b, c, d) = world
    scheme = make_scheme(session, village, close_policy="reset", base_score=100)
    award(session, scheme, a, 30, bj(2026, 10, 3, 9), category="德治")
    award(session, scheme, a, 12, bj(2026, 11, 3, 9), category="自治")
    spend(session, scheme, a, 20, bj(2026, 12, 1, 9))
    ledger.deduct(
        session,
        scheme=scheme,
        subject_id=a.id,
        points=5,
        idem_key="d-a",
        actor_id=None,
        now=bj(2026, 12, 2, 9),
        category="法治",
    )
    award(session, scheme, b, 42, bj(2026, 11, 3, 9), category="德治")
    wrong = award(session, scheme, c, 42, bj(2026, 11, 3, 9), category="德治")
    ledger.reverse(
        session, entry_id=wrong.id, reason="记错农户", actor_id=None, now=bj(2026, 11, 4, 9)
    )
    cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    session.commit()

    stmts = period_statements(session, village=village, period="2026-Q4")
    by_id = {line.household_id: line for line in stmts.lines}
    sa = by_id[a.id]
    assert sa.opening == 0
    assert sa.awards == {"德治": 30, "自治": 12}
    assert (sa.deductions, sa.redemptions, sa.expired, sa.closing) == (-5, -20, -17, 0)
    assert sa.score == 100 + 42 - 5
    # b earned as much as a before the deduction; c's award was reversed in the same quarter.
    assert (by_id[b.id].score, by_id[b.id].rank, by_id[b.id].expired) == (142, 1, -42)
    assert (sa.rank, by_id[c.id].rank, by_id[d.id].rank) == (2, 3, 3)
    assert by_id[c.id].awards == {"德治": 0} and by_id[c.id].closing == 0
    assert stmts.ranked == 4 and stmts.categories == ["德治", "自治"]
    assert stmts.head == ledger.chain_head(session, village.id)
    assert verify(session, expected_head=stmts.head).ok
    one = period_statements(session, village=village, period="2026-Q4", household_number=b.number)
    assert [line.household_id for line in one.lines] == [b.id] and one.lines[0].rank == 1


def test_statements_chain_and_count_a_later_expiry_in_the_later_period(session, world):
    village, (a, *_rest) = world
    scheme = make_scheme(session, village, close_policy="expire_after_n", expire_after_n=2)
    award(session, scheme, a, 40, bj(2026, 8, 3, 9))
    award(session, scheme, a, 25, bj(2026, 11, 3, 9))
    spend(session, scheme, a, 10, bj(2026, 11, 20, 9))  # from the Q3 lot
    for when in (bj(2026, 10, 1, 0, 5), bj(2027, 1, 1, 0, 5)):
        cycles.reconcile(session, now=when)
    session.commit()
    q3 = period_statements(session, village=village, period="2026-Q3").lines[0]
    q4 = period_statements(session, village=village, period="2026-Q4").lines[0]
    assert (q3.opening, q3.awards, q3.expired, q3.closing) == (0, {"德治": 40}, 0, 40)
    # The Q3 lot's last 30 expire at the Q4 close: they show on the Q4 statement.
    assert (q4.opening, q4.awards, q4.redemptions, q4.expired) == (40, {"德治": 25}, -10, -30)
    assert q4.closing == 25 == ledger.get_balance(session, scheme=scheme, subject_id=a.id).net
    assert (q3.score, q4.score) == (40, 25)


def test_an_open_period_has_no_statement_yet(session, world):
    village, (a, *_rest) = world
    scheme = make_scheme(session, village, close_policy="reset")
    award(session, scheme, a, 5, bj(2026, 11, 3, 9))
    cycles.reconcile(session, now=bj(2026, 11, 25, 13))
    with pytest.raises(ConflictError):
        period_statements(session, village=village, period="2026-Q4")
    cycles.reconcile(session, now=bj(2027, 1, 1, 0, 5))
    with pytest.raises(NotFoundError):
        period_statements(session, village=village, period="2026-Q4", household_number="nope")
    with pytest.raises(NotFoundError):
        period_statements(session, village=village, period="2026-Q4", scheme_code="missing")
