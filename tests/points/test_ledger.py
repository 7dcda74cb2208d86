"""What a household sees of the ledger: awards, deductions, spending, owed points, corrections."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from points import ledger
from points.errors import (
    AlreadyReversedError,
    ConflictError,
    DuplicateRequestError,
    InsufficientPointsError,
    ValidationError,
)
from points.ledger.verify import verify
from points.models import Account, JournalEntry, Posting
from tests.factories import make_household, make_scheme, make_village


@pytest.fixture
def shop(session):
    """A village with a quarterly, redeemable household scheme (base score 100) and one home."""
    village = make_village(session)
    scheme = make_scheme(session, village, base_score=100)
    home = make_household(session, village)
    return village, scheme, home


def _award(session, scheme, home, points, key, now, **kw):
    return ledger.award(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=points,
        idem_key=key,
        actor_id=None,
        now=now,
        **kw,
    )


def _balance(session, scheme, home):
    return ledger.get_balance(session, scheme=scheme, subject_id=home.id)


def test_award_credits_the_current_period_and_sums_to_zero(session, shop, now):
    _, scheme, home = shop
    entry = _award(session, scheme, home, 12, "a1", now, memo="打扫公共区域", category="德治")
    assert _balance(session, scheme, home).available == 12
    assert entry.period_key == "2026-Q4" and entry.month == "2026-11"
    assert sorted(p.amount for p in entry.postings) == [-12, 12]
    assert entry.seq == 1 and entry.prev_hash == ledger.GENESIS_HASH


def test_spend_takes_oldest_lot_first(session, shop, now):
    _, scheme, home = shop
    _award(session, scheme, home, 30, "q3", now - timedelta(days=90))  # 2026-Q3
    _award(session, scheme, home, 50, "q4", now)
    ledger.spend(
        session, scheme=scheme, subject_id=home.id, points=40, idem_key="s", actor_id=None, now=now
    )
    assert _balance(session, scheme, home).lots == (("2026-Q3", 0), ("2026-Q4", 40))


def test_spend_refuses_when_short_and_changes_nothing(session, shop, now):
    _, scheme, home = shop
    _award(session, scheme, home, 20, "a", now)
    with pytest.raises(InsufficientPointsError) as err:
        ledger.spend(
            session,
            scheme=scheme,
            subject_id=home.id,
            points=21,
            idem_key="s",
            actor_id=None,
            now=now,
        )
    assert err.value.code == "insufficient_points"
    assert "可用 20 分" in err.value.message
    assert _balance(session, scheme, home).available == 20
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == 1


def test_deduction_beyond_balance_is_owed_and_settled_by_the_next_award(session, shop, now):
    _, scheme, home = shop
    _award(session, scheme, home, 5, "a", now)
    ledger.deduct(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=12,
        idem_key="d",
        actor_id=None,
        now=now,
        memo="乱倒垃圾",
    )
    assert _balance(session, scheme, home) == ledger.Balance(
        available=0, owed=-7, lots=(("2026-Q4", 0),)
    )
    _award(session, scheme, home, 10, "b", now)
    assert _balance(session, scheme, home).available == 3
    assert _balance(session, scheme, home).owed == 0


def test_score_is_not_balance(session, shop, now):
    _, scheme, home = shop
    _award(session, scheme, home, 50, "a", now)
    ledger.deduct(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=10,
        idem_key="d",
        actor_id=None,
        now=now,
        memo="燃放烟花",
    )
    ledger.spend(
        session, scheme=scheme, subject_id=home.id, points=30, idem_key="s", actor_id=None, now=now
    )
    assert ledger.period_score(session, scheme=scheme, subject_id=home.id, period="2026-Q4") == 140
    assert ledger.period_score(session, scheme=scheme, subject_id=home.id, month="2026-11") == 40
    assert _balance(session, scheme, home).available == 10


def test_replay_returns_the_first_entry_and_other_payload_conflicts(session, shop, now):
    _, scheme, home = shop
    first = _award(session, scheme, home, 8, "same", now, memo="志愿服务")
    again = _award(session, scheme, home, 8, "same", now + timedelta(minutes=5), memo="志愿服务")
    assert again.id == first.id
    with pytest.raises(DuplicateRequestError):
        _award(session, scheme, home, 9, "same", now, memo="志愿服务")
    assert _balance(session, scheme, home).available == 8


def test_reversal_of_a_spent_award_never_makes_a_lot_negative(session, shop, now):
    _, scheme, home = shop
    award = _award(session, scheme, home, 40, "a", now)
    ledger.spend(
        session, scheme=scheme, subject_id=home.id, points=30, idem_key="s", actor_id=None, now=now
    )
    fix = ledger.reverse(session, entry_id=award.id, reason="录错户", actor_id=None, now=now)
    assert fix.reverses_id == award.id and fix.score_delta == -40
    assert _balance(session, scheme, home) == ledger.Balance(
        available=0, owed=-30, lots=(("2026-Q4", 0),)
    )
    assert ledger.period_score(session, scheme=scheme, subject_id=home.id, period="2026-Q4") == 100


def test_an_entry_is_reversed_at_most_once(session, shop, now):
    _, scheme, home = shop
    award = _award(session, scheme, home, 10, "a", now)
    ledger.reverse(session, entry_id=award.id, reason="重复录入", actor_id=None, now=now)
    with pytest.raises(AlreadyReversedError):
        ledger.reverse(
            session, entry_id=award.id, reason="再来一次", actor_id=None, now=now, idem_key="other"
        )
    with pytest.raises(ConflictError):
        fix = session.scalar(select(JournalEntry).where(JournalEntry.reverses_id == award.id))
        ledger.reverse(session, entry_id=fix.id, reason="冲正冲正", actor_id=None, now=now)


def test_reversing_a_redemption_gives_the_points_back(session, shop, now):
    _, scheme, home = shop
    _award(session, scheme, home, 60, "a", now)
    sale = ledger.spend(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=45,
        idem_key="s",
        actor_id=None,
        now=now,
        memo="大米一袋",
    )
    ledger.reverse(session, entry_id=sale.id, reason="当日取消", actor_id=None, now=now)
    assert _balance(session, scheme, home).available == 60


def test_reversal_needs_a_reason(session, shop, now):
    _, scheme, home = shop
    award = _award(session, scheme, home, 10, "a", now)
    with pytest.raises(ValidationError):
        ledger.reverse(session, entry_id=award.id, reason="  ", actor_id=None, now=now)


def test_expiry_moves_the_remainder_and_closes_the_lot(session, shop, now):
    _, scheme, home = shop
    _award(session, scheme, home, 25, "q3", now - timedelta(days=90))
    _award(session, scheme, home, 5, "q4", now)
    lot = session.scalar(select(Account).where(Account.period_key == "2026-Q3"))
    entry = ledger.expire_lot(session, account_id=lot.id, now=now)
    assert entry.kind == "expiry" and entry.score_delta == 0
    assert _balance(session, scheme, home).lots == (("2026-Q4", 5),)
    assert ledger.expire_lot(session, account_id=lot.id, now=now).id == entry.id  # replay


@pytest.mark.parametrize("points", [0, -5, 2.5, True, "10"])
def test_points_must_be_a_positive_integer(session, shop, now, points):
    _, scheme, home = shop
    with pytest.raises(ValidationError):
        _award(session, scheme, home, points, "bad", now)
    assert session.scalar(select(func.count()).select_from(Posting)) == 0


def test_batch_award_posts_one_entry_per_line_in_one_chain(session, shop, now):
    village, scheme, home = shop
    others = [make_household(session, village) for _ in range(4)]
    lines = [
        ledger.AwardLine(h.id, 3, f"event:1:{h.id}", "村庄大扫除", "德治") for h in [home, *others]
    ]
    ids = ledger.post_awards(session, scheme=scheme, lines=lines, actor_id=None, now=now)
    assert len(set(ids)) == 5
    assert ledger.post_awards(session, scheme=scheme, lines=lines, actor_id=None, now=now) == ids
    assert ledger.chain_head(session, village.id)[0] == 5
    assert verify(session).ok


def test_villages_have_separate_chains(session, now):
    a, b = make_village(session), make_village(session)
    for v in (a, b):
        scheme = make_scheme(session, v)
        home = make_household(session, v)
        _award(session, scheme, home, 1, "x", now)  # the same key in two villages is fine
    assert ledger.chain_head(session, a.id)[0] == 1 and ledger.chain_head(session, b.id)[0] == 1
    report = verify(session)
    assert report.ok and set(report.heads) == {a.code, b.code}


def test_a_closed_period_takes_no_more_points(session, shop, now):
    from points.errors import PeriodClosedError

    _, scheme, home = shop
    _award(session, scheme, home, 10, "a", now)
    lot = session.scalar(select(Account).where(Account.period_key == "2026-Q4"))
    ledger.expire_lot(session, account_id=lot.id, now=now)
    with pytest.raises(PeriodClosedError) as err:
        _award(session, scheme, home, 5, "b", now)
    assert err.value.code == "period_closed" and "2026-Q4" in err.value.message
    assert _balance(session, scheme, home).available == 0 and verify(session).ok
