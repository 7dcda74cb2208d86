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
