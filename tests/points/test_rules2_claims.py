"""Rules engine 2 through real claims on both databases: caps reserved at recording (also under
16 concurrent recordings), once-only limits, escalating repeat deductions, campaigns and
per-rule notice days (0: posted at once)."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from points import claims, ledger
from points.claims import ClaimInput, RuleRefusedError
from points.db import make_engine, make_sessionmaker
from points.ledger.verify import verify
from points.models import Claim, JournalEntry, Scheme, Village
from points.models.claims import ClaimStatus
from points.org.access import load_actor
from tests.factories import adopt_catalog, make_household, make_scheme, make_user, make_village

TODAY = date(2026, 11, 25)
BASE = {"unit": "time", "recorder_roles": ["admin", "recorder"], "subjects": ["household"]}
RULES = [
    # the leak: capped at 2 points a month
    dict(
        BASE,
        code="ZZ-01",
        name="参加村民大会",
        category="自治",
        sign=1,
        points=1,
        caps={"month": 2},
        review="never",
    ),
    dict(
        BASE,
        code="JL-03",
        name="被评为村级文明家庭",
        category="德治",
        sign=1,
        points=10,
        once=True,
        review="never",
    ),
    dict(
        BASE,
        code="MEI-51",
        name="乱倒垃圾",
        category="德治",
        subcategory="积美",
        sign=-1,
        points=5,
        review="always",
        repeat_window="year",
        repeat_multiplier=2,
        repeat_points=20,
    ),
    dict(
        BASE,
        code="MEI-05",
        name="参加环境整治集中行动",
        category="德治",
        sign=1,
        points=3,
        review="never",
        campaign_name="环境宣传月",
        campaign_from="2026-11-01",
        campaign_to="2026-11-30",
        campaign_multiplier=2,
    ),
    dict(
        BASE,
        code="MEI-09",
        name="冬季义务扫雪",
        category="德治",
        sign=1,
        points=2,
        review="never",
        campaign_name="冬季扫雪",
        campaign_from="2026-12-01",
        campaign_to="2027-02-28",
    ),
    dict(
        BASE,
        code="ZZ-02",
        name="参加院坝协商会（签到）",
        category="自治",
        sign=1,
        points=1,
        review="never",
        notice_days=0,
    ),
]
# ruff: noqa: E501


@pytest.fixture
def v(session, now):
    class V:
        pass

    x = V()
    x.village = make_village(session)
    x.scheme = make_scheme(session, x.village, notice_days=7)
    adopt_catalog(session, x.scheme, RULES, now=now)
    x.home = make_household(session, x.village)
    x.recorder = make_user(session, x.village, "recorder")
    x.reviewer = make_user(session, x.village, "reviewer")
    return x


def rec(session, v, code, *, day=TODAY, now, description="已核实", **kw):
    item = ClaimInput(
        household_id=v.home.id, rule_code=code, occurred_on=day, description=description, **kw
    )
    return claims.record(
        session, village=v.village, scheme=v.scheme, actor=v.recorder, item=item, now=now
    )


def test_a_once_only_item_refuses_a_second_claim_until_the_first_is_rejected(session, v, now):
    first = rec(session, v, "JL-03", now=now)
    assert first.points == 10
    with pytest.raises(RuleRefusedError) as err:
        rec(session, v, "JL-03", day=date(2026, 3, 1), now=now)
    assert err.value.code == "once_done" and "限一次" in err.value.message
    # A wrong claim is rejected by an upheld objection: the limit is released.
    objection = claims.object_to(session, claim=first, actor=v.reviewer, reason="不属实", now=now)
    claims.resolve_objection(
        session, objection=objection, actor=v.reviewer, uphold=True, note="核实不符", now=now
    )
    assert rec(session, v, "JL-03", now=now).points == 10


def test_repeat_deductions_escalate_within_the_year_and_say_why(session, v, now):
    first = rec(session, v, "MEI-51", day=date(2026, 3, 2), now=now)
    second = rec(session, v, "MEI-51", day=date(2026, 6, 2), now=now)
    third = rec(session, v, "MEI-51", day=date(2026, 9, 2), now=now)
    fourth = rec(session, v, "MEI-51", day=date(2026, 11, 20), now=now)
    assert [c.points for c in (first, second, third)] == [-5, -10, -20]
    assert first.rule_note is None
    assert second.rule_note == "一年内第 2 次，按 2 倍扣分"
    assert third.rule_note == "一年内第 3 次，按加重标准扣 20 分"
    assert fourth.points == -20 and "第 4 次" in fourth.rule_note
    # The notice a villager reads carries the reason.
    for c in (first, second, third):
        claims.approve(session, claim=c, actor=v.reviewer, now=now)
    notes = {c.id: c.rule_note for c in claims.open_notices(session, village=v.village, now=now)}
    assert notes[second.id] == "一年内第 2 次，按 2 倍扣分"


def test_a_rejected_deduction_does_not_count_as_a_repeat(session, v, now):
    first = rec(session, v, "MEI-51", day=date(2026, 3, 2), now=now)
    claims.reject(session, claim=first, actor=v.reviewer, now=now, reason="认错了人")
    assert rec(session, v, "MEI-51", day=date(2026, 6, 2), now=now).points == -5


def test_a_campaign_doubles_points_inside_its_dates_only(session, v, now):
    inside = rec(session, v, "MEI-05", day=date(2026, 11, 3), now=now)
    outside = rec(session, v, "MEI-05", day=date(2026, 10, 31), now=now)
    assert (inside.points, outside.points) == (6, 3)
    assert inside.rule_note == "“环境宣传月”期间按 2 倍计分" and outside.rule_note is None


def test_a_dated_rule_exists_only_between_its_dates(session, v, now):
    with pytest.raises(RuleRefusedError) as err:
        rec(session, v, "MEI-09", day=TODAY, now=now)
    assert err.value.code == "campaign_inactive"
    assert "2026-12-01 至 2027-02-28" in err.value.message


def test_zero_notice_days_without_review_posts_at_once_and_only_once(session, v, now):
    claim = rec(session, v, "ZZ-02", now=now)
    assert claim.status == ClaimStatus.POSTED and claim.entry_id is not None
    assert ledger.get_balance(session, scheme=v.scheme, subject_id=v.home.id).available == 1
    assert claims.post_due(session, now=now + timedelta(days=1)) == []
    again = claims.post_claim(session, claim_id=claim.id, now=now + timedelta(days=1))
    assert again.entry_id == claim.entry_id
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == 1
    assert verify(session).ok


def test_a_rule_with_its_own_notice_days_sets_the_notice_end(session, v, now):
    adopt_catalog(
        session,
        v.scheme,
        [dict(RULES[0], notice_days=3)],
        now=now,
        adopted_on=date(2026, 11, 1),
    )
    claim = rec(session, v, "ZZ-01", now=now)
    assert claim.notice_until == now + timedelta(days=3)


# --- caps under concurrent recording ------------------------------------------------------------

THREADS = 16


@pytest.fixture
def factory(db_url):
    engine = make_engine(db_url, pool_size=THREADS + 4, max_overflow=4, pool_timeout=60)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("batch", [False, True], ids=["single", "event"])
def test_16_concurrent_recordings_never_exceed_a_cap(factory, now, batch):
    with factory() as s:
        village = make_village(s)
        scheme = make_scheme(s, village, notice_days=7)
        adopt_catalog(s, scheme, RULES, now=now)
        homes = [make_household(s, village) for _ in range(3)]
        recorders = [make_user(s, village, "recorder").user_id for _ in range(THREADS)]
        ids = (village.id, scheme.id, [h.id for h in homes])
        s.commit()

    barrier = threading.Barrier(THREADS)
    errors: dict[int, BaseException] = {}

    def run(i):
        with factory() as s:
            village, scheme = s.get(Village, ids[0]), s.get(Scheme, ids[1])
            actor = load_actor(s, recorders[i])
            s.rollback()  # end the reads: on SQLite a transaction holds the database
            barrier.wait(timeout=60)
            try:
                if batch:
                    # Overlapping events in different orders: locks are taken in id order.
                    order = ids[2] if i % 2 else list(reversed(ids[2]))
                    claims.record_batch(
                        s,
                        village=village,
                        scheme=scheme,
                        actor=actor,
                        title="村民大会",
                        rule_code="ZZ-01",
                        occurred_on=TODAY,
                        subjects=[(h, None) for h in order],
                        now=now,
                    )
                else:
                    item = ClaimInput(household_id=ids[2][0], rule_code="ZZ-01", occurred_on=TODAY)
                    claims.record(
                        s, village=village, scheme=scheme, actor=actor, item=item, now=now
                    )
                s.commit()
            except BaseException as exc:  # noqa: BLE001 - asserted below
                s.rollback()
                errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a recording hung"

    # Exactly two recordings fit the cap of 2 points a month; every other one was refused
    # with the cap message a recorder reads, never a database error.
    assert len(errors) == THREADS - 2
    assert all(isinstance(e, RuleRefusedError) and e.code == "cap_reached" for e in errors.values())
    with factory() as s:
        for home_id in ids[2] if batch else ids[2][:1]:
            total = s.scalar(
                select(func.sum(Claim.points)).where(
                    Claim.household_id == home_id, Claim.status == ClaimStatus.IN_NOTICE
                )
            )
            assert total == 2
