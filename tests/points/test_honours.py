"""Honours from a year of scores: the scheduler drafts, someone else approves, publication
freezes names and the ledger head, an appeal publishes a correction, a withdrawal leaves a
notice; party stars combine the party score with the branch's 民主评议."""

from datetime import UTC, datetime

import pytest

from points import cycles, honours, ledger
from points.errors import ConflictError, PermissionDeniedError, ValidationError
from points.honours.rules import honour_rules, party_stars
from points.models.honours import HonourKind, HonourList
from tests.honours_world import YEAR, Year

JAN20 = datetime(2026, 1, 20, 2, tzinfo=UTC)


@pytest.fixture
def y(session):
    world = Year(session)
    world.score_the_year()
    return world


def _by_name(session, item):
    view = honours.staff_view(session, item)
    return {e["name"].split("（")[0]: e for e in view["entries"] if not e["removed"]}


def test_the_scheduler_drafts_the_years_stars_from_scores_with_the_veto_applied(session, y):
    s, v = session, y.village
    honours.record_review(
        s, village=v, actor=y.admin, resident_id=y.member("001").id, year=YEAR, score=90, now=JAN20
    )
    honours.record_review(
        s, village=v, actor=y.admin, resident_id=y.member("002").id, year=YEAR, grade="基本合格",
        now=JAN20,
    )  # fmt: skip
    # Not before January 20th: December's claims are still in 公示.
    early = cycles.reconcile(s, now=datetime(2026, 1, 5, 2, tzinfo=UTC))
    assert not [r for r in early.results if r.item.job == honours.JOB]
    done = [r for r in cycles.reconcile(s, now=JAN20).results if r.item.job == honours.JOB]
    assert [r.status for r in done] == ["done"]
    again = [r for r in cycles.reconcile(s, now=JAN20).results if r.item.job == honours.JOB]
    assert again == []  # once per village and year

    homes = honours.live_list(s, village=v, kind=HonourKind.HOUSEHOLD_STARS, year=YEAR)
    stars = {n: e["stars"] for n, e in _by_name(s, homes).items()}
    assert stars == {"张大山": 5, "李四": 3}  # 王五 vetoed (赌博), 赵六 below one star
    party = honours.live_list(s, village=v, kind=HonourKind.PARTY_STARS, year=YEAR)
    members = _by_name(s, party)
    assert (members["张大山"]["score"], members["张大山"]["stars"]) == (132, 4)
    assert (members["李四"]["score"], members["李四"]["stars"]) == (81, 2)
    awards = honours.live_list(s, village=v, kind=HonourKind.AWARDS, year=YEAR)
    view = honours.staff_view(s, awards)["entries"]
    titles = sorted((e["title"], e["name"].split("（")[0]) for e in view)
    assert titles == [("优秀党员", "张大山"), ("最美家庭", "张大山")]
    # The vetoed household cannot be nominated either.
    with pytest.raises(ConflictError) as refused:
        honours.nominate(
            s, item=awards, actor=y.reviewer, household_id=y.homes["003"].id,
            resident_id=y.member("003").id, title="优秀群众", text="热心公益",
        )  # fmt: skip
    assert "一票否决" in refused.value.message


def test_draft_approve_by_another_publish_appeal_correct_and_withdraw(session, y):
    s, v = session, y.village
    now = JAN20
    item = honours.draft_list(
        s, village=v, kind=HonourKind.HOUSEHOLD_STARS, year=YEAR, now=now, actor_id=y.admin.user_id
    )
    with pytest.raises(PermissionDeniedError):
        honours.approve_list(s, item=item, actor=y.admin, now=now)  # the drafter
    honours.approve_list(s, item=item, actor=y.admin2, now=now)
    honours.publish_list(s, item=item, actor=y.admin, now=now)
    assert (item.head_seq, item.head_hash) == ledger.chain_head(s, v.id)
    view = honours.public_view(item)
    assert sorted((e["who"], e["stars"]) for e in view["entries"]) == [("张*山", 5), ("李*", 3)]

    # 李四's household appeals: a deed was missed; the review group upholds it with 4 stars.
    entry = next(e for e in item.entries if e.household_id == y.homes["002"].id)
    with pytest.raises(PermissionDeniedError):
        honours.appeal(  # not about someone else's household
            s, item=item, entry_id=next(e.id for e in item.entries if e.id != entry.id),
            actor=y.resident_b, reason="不对", now=now,
        )  # fmt: skip
    appeal = honours.appeal(
        s, item=item, entry_id=entry.id, actor=y.resident_b, reason="漏记了三月的好事", now=now
    )
    honours.resolve_appeal(
        s, appeal=appeal, actor=y.reviewer, uphold=True, resolution="核实属实，改为四星",
        stars=4, now=now,
    )  # fmt: skip
    fixed = s.get(HonourList, appeal.correction_list_id)
    assert item.status == "superseded" and fixed.status == "published"
    assert fixed.correction_of == item.id and item.corrected_by == fixed.id
    assert sorted(e["stars"] for e in honours.public_view(fixed)["entries"]) == [4, 5]
    assert honours.public_view(fixed)["correction"]["reason"] == "核实属实，改为四星"
    mine = honours.household_honours(s, village=v, household_id=y.homes["002"].id)
    assert [(m["year"], m["stars"], m["label"]) for m in mine] == [(YEAR, 4, "四星级文明户")]
    # Statements print the same, for every household at once.
    labels = honours.honour_labels(s, village=v)
    assert labels[y.homes["002"].id] == [f"{YEAR}年度 四星级文明户"]

    honours.withdraw_list(s, item=fixed, actor=y.admin, reason="名单需重新核对", now=now)
    gone = honours.public_view(fixed)
    assert gone["entries"] == [] and gone["withdraw_reason"] == "名单需重新核对"
    assert honours.household_honours(s, village=v, household_id=y.homes["002"].id) == []


def test_the_moral_model_roll_needs_consent_and_appears_by_year(session, y):
    s, v = session, y.village
    roll = honours.draft_list(
        s, village=v, kind=HonourKind.MODELS, year=YEAR, now=JAN20, actor_id=y.admin.user_id
    )
    with pytest.raises(ValidationError):
        honours.nominate(
            s, item=roll, actor=y.reviewer, household_id=y.homes["004"].id,
            resident_id=y.member("004").id, title="道德模范", text="照顾瘫痪婆婆二十年",
        )  # fmt: skip
    honours.nominate(
        s, item=roll, actor=y.reviewer, household_id=y.homes["004"].id,
        resident_id=y.member("004").id, title="道德模范", text="照顾瘫痪婆婆二十年",
        consent_note="本人当面同意，2026-01-18 村委会记录",
    )  # fmt: skip
    # An admin who nominated someone on the list cannot approve it either (maker ≠ checker).
    honours.nominate(
        s, item=roll, actor=y.admin2, household_id=y.homes["002"].id,
        resident_id=y.member("002").id, title="道德模范", text="义务修路十年",
        consent_note="本人当面同意",
    )  # fmt: skip
    with pytest.raises(PermissionDeniedError):
        honours.approve_list(s, item=roll, actor=y.admin2, now=JAN20)
    honours.remove_entry(
        s, item=roll, actor=y.admin, entry_id=roll.entries[-1].id, reason="本人改为明年申报"
    )
    # The reviewer nominated: only an admin who did not may approve.
    honours.approve_list(s, item=roll, actor=y.admin2, now=JAN20)
    honours.publish_list(s, item=roll, actor=y.admin2, now=JAN20)
    assert [(r["year"], [e["who"] for e in r["entries"]]) for r in honours.model_roll(
        s, village=v)] == [(YEAR, ["赵*"])]  # fmt: skip
    counts = honours.town_counts(s, town=v.town, year=YEAR)
    assert [c["titles"] for c in counts if c["code"] == v.code] == [{"道德模范": 1}]


def test_stars_cannot_be_nominated_and_a_year_must_have_ended(session, y):
    s, v = session, y.village
    with pytest.raises(ValidationError):
        honours.draft_list(s, village=v, kind=HonourKind.AWARDS, year=2026, now=JAN20)
    item = honours.draft_list(s, village=v, kind=HonourKind.HOUSEHOLD_STARS, year=YEAR, now=JAN20)
    with pytest.raises(ConflictError):
        honours.nominate(
            s, item=item, actor=y.admin, household_id=y.homes["004"].id, title="stars", text="x"
        )


def test_the_combining_rule_is_data():
    rules = honour_rules({"party_weight": 50, "review_weight": 50})
    assert party_stars(rules, None, 120, 100, None) == (110, 3)
    assert party_stars(rules, None, 150, 100, "不合格") == (125, 0)
    assert party_stars(honour_rules(None), None, 150, None, None) == (150, 5)


def test_a_review_after_drafting_updates_the_draft_and_the_rule_is_scheme_data(session, y):
    s, v = session, y.village
    party = honours.draft_list(s, village=v, kind=HonourKind.PARTY_STARS, year=YEAR, now=JAN20)
    # No review yet: the party score alone (150 and 90).
    assert {n: e["stars"] for n, e in _by_name(s, party).items()} == {"张大山": 5, "李四": 2}
    honours.record_review(
        s, village=v, actor=y.admin, resident_id=y.member("002").id, year=YEAR, grade="不合格",
        now=JAN20,
    )  # fmt: skip
    members = _by_name(s, party)
    assert "李四" not in members  # 不合格: no stars, so off the list
    assert party.created_by == y.admin.user_id  # the secretary recomputed it: not its checker
    honours.set_rules(
        s, village=v, actor=y.admin, scheme=y.party,
        rules={"party_weight": 50, "review_weight": 50, "grade_caps": {}},
    )  # fmt: skip
    honours.redraft_list(s, item=party, now=JAN20)
    # 李四: (90 + 0) / 2 = 45, below one star even without the cap.
    assert "李四" not in _by_name(s, party)
    with pytest.raises(ValidationError):
        honours.set_rules(s, village=v, actor=y.admin, scheme=y.party, rules={"party_weight": 101})


# --- 星级文明户 per scoring period (the scheme's cadence) ----------------------------------------

Q3_CLOSED = datetime(2025, 10, 3, 2, tzinfo=UTC)  # Q3 is closed, its claims still in 公示
Q3_NOTICE_OVER = datetime(2025, 10, 9, 2, tzinfo=UTC)  # 7 days of 公示 after the quarter


def _period_items(results):
    return sorted(r.item.key for r in results if r.item.job == honours.JOB and r.status == "done")


def test_per_period_stars_are_drafted_once_after_each_close_and_its_notice(session, y):
    s, v = session, y.village
    assert honours.household_cadence(y.scheme) == "year"
    honours.set_household_cadence(s, village=v, actor=y.admin, cadence="period")
    assert honours.household_cadence(y.scheme) == "period"
    assert y.scheme.honour_rules["household_cadence"] == "period"
    with pytest.raises(ValidationError):
        honours.set_household_cadence(s, village=v, actor=y.admin, cadence="month")

    first = cycles.reconcile(s, now=Q3_CLOSED).results
    # Q1 and Q2 are closed and past 公示; Q3 closed in this very run but is still in 公示.
    assert [k for k in _period_items(first) if "period" in k] == [
        "honours:period:2025-Q1",
        "honours:period:2025-Q2",
    ]
    with pytest.raises(ConflictError) as early:
        honours.draft_list(s, village=v, kind=HonourKind.HOUSEHOLD_STARS, period="2025-Q3",
                           now=Q3_CLOSED)  # fmt: skip
    assert early.value.details["reason"] == "notice_open"
    with pytest.raises(ConflictError) as still_open:
        honours.draft_list(s, village=v, kind=HonourKind.HOUSEHOLD_STARS, period="2025-Q4",
                           now=Q3_NOTICE_OVER)  # fmt: skip
    assert still_open.value.details["reason"] == "period_open"

    second = cycles.reconcile(s, now=Q3_NOTICE_OVER).results
    assert [k for k in _period_items(second) if "period" in k] == ["honours:period:2025-Q3"]
    again = cycles.reconcile(s, now=Q3_NOTICE_OVER).results
    assert [k for k in _period_items(again) if "period" in k] == []  # exactly once per period

    q3 = honours.live_list(
        s, village=v, kind=HonourKind.HOUSEHOLD_STARS, year=YEAR, period="2025-Q3"
    )
    assert (q3.year, q3.period) == (YEAR, "2025-Q3")
    by_name = _by_name(s, q3)
    # Q3's own score (3 acts × 40 = 120 → 4 stars); 王五's 赌博 (June, a year-long veto) bars
    # him; 赵六 scored nothing in Q3.
    assert {n: (e["score"], e["stars"]) for n, e in by_name.items()} == {
        "张大山": (120, 4),
        "李四": (120, 4),
    }
    assert by_name["李四"]["text"].startswith("2025年第三季度4星级文明户")
    # Each period's list is its own: Q1 and Q2 stand beside Q3; no yearly star list.
    periods = sorted(
        i.period for i in honours.list_lists(s, village=v, public=False, year=YEAR)
        if i.kind == HonourKind.HOUSEHOLD_STARS
    )  # fmt: skip
    assert periods == ["2025-Q1", "2025-Q2", "2025-Q3"]
    # A yearly 星级文明户 list is refused while the scheme designates per period.
    with pytest.raises(ConflictError) as yearly:
        honours.draft_list(s, village=v, kind=HonourKind.HOUSEHOLD_STARS, year=YEAR, now=JAN20)
    assert yearly.value.details["reason"] == "cadence_period"
    with pytest.raises(ValidationError):
        honours.draft_list(s, village=v, kind=HonourKind.AWARDS, period="2025-Q3",
                           now=Q3_NOTICE_OVER)  # fmt: skip
    with pytest.raises(ValidationError):
        honours.draft_list(s, village=v, kind=HonourKind.HOUSEHOLD_STARS, period="2025-13",
                           now=Q3_NOTICE_OVER)  # fmt: skip


def test_a_periods_list_is_approved_by_another_published_appealed_and_withdrawn(session, y):
    s, v = session, y.village
    honours.set_household_cadence(s, village=v, actor=y.admin, cadence="period")
    cycles.reconcile(s, now=Q3_CLOSED)
    item = honours.draft_list(
        s, village=v, kind=HonourKind.HOUSEHOLD_STARS, period="2025-Q3", now=Q3_NOTICE_OVER,
        actor_id=y.admin.user_id,
    )  # fmt: skip
    with pytest.raises(PermissionDeniedError):
        honours.approve_list(s, item=item, actor=y.admin, now=Q3_NOTICE_OVER)
    honours.approve_list(s, item=item, actor=y.admin2, now=Q3_NOTICE_OVER)
    honours.publish_list(s, item=item, actor=y.admin, now=Q3_NOTICE_OVER)
    assert item.snapshot["period"] == "2025-Q3"
    mine = honours.household_honours(s, village=v, household_id=y.homes["002"].id)
    assert [(r["when"], r["label"]) for r in mine] == [("2025年第三季度", "四星级文明户")]
    labels = honours.honour_labels(s, village=v)[y.homes["002"].id]
    assert labels == ["2025年第三季度 四星级文明户"]

    entry = next(e for e in item.entries if e.household_id == y.homes["002"].id)
    raised = honours.appeal(s, item=item, entry_id=entry.id, actor=y.resident_b,
                            reason="本季度还做了志愿服务", now=Q3_NOTICE_OVER)  # fmt: skip
    honours.resolve_appeal(s, appeal=raised, actor=y.reviewer, uphold=True, stars=5,
                           resolution="核实补记", now=Q3_NOTICE_OVER)  # fmt: skip
    fixed = s.get(HonourList, raised.correction_list_id)
    assert (fixed.period, item.status) == ("2025-Q3", "superseded")
    mine = honours.household_honours(s, village=v, household_id=y.homes["002"].id)
    assert [(r["when"], r["label"], r["text"]) for r in mine] == [
        ("2025年第三季度", "五星级文明户", "2025年第三季度5星（经申诉更正）")
    ]
    honours.withdraw_list(s, item=fixed, actor=y.admin, reason="重新核算", now=Q3_NOTICE_OVER)
    assert honours.public_view(fixed)["entries"] == []
    assert honours.household_honours(s, village=v, household_id=y.homes["002"].id) == []
    # Withdrawn, the period may be drafted again (one live list per period).
    again = honours.draft_list(s, village=v, kind=HonourKind.HOUSEHOLD_STARS, period="2025-Q3",
                               now=Q3_NOTICE_OVER)  # fmt: skip
    assert again.id not in (item.id, fixed.id)


def test_per_period_drafting_is_refused_while_the_scheme_is_yearly(session, y):
    cycles.reconcile(session, now=Q3_NOTICE_OVER)
    with pytest.raises(ConflictError) as refused:
        honours.draft_list(session, village=y.village, kind=HonourKind.HOUSEHOLD_STARS,
                           period="2025-Q3", now=Q3_NOTICE_OVER)  # fmt: skip
    assert refused.value.details["reason"] == "cadence_year"
