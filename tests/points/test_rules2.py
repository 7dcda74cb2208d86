"""Rules engine 2 in the pure engine, as tables: once-only and lifetime limits, repeat
escalation, campaigns, per-rule notice days, veto, automatic conditions, protected rights; and
the dry run of them. No database."""

from __future__ import annotations

from datetime import date

import pytest

from points.catalog import check_rules, rule_features
from points.catalog.conditions import condition_met, condition_window, describe_condition
from points.catalog.dryrun import PastAct, auto_awards, dry_run, replay
from points.catalog.rules import (
    Facts,
    Rule,
    Window,
    decide,
    rule_from_dict,
    rule_to_dict,
    validate_rule,
)

ROLES = {"admin", "recorder"}


def rule(**kw) -> Rule:
    values = dict(code="T-1", name="测试项目", category="德治", points=5, recorder_roles=ROLES)
    values.update(kw)
    return Rule(**values)


def facts(**kw) -> Facts:
    values = dict(subject_kind="household", recorder_role="recorder", reason="已核实")
    values.update(kw)
    return Facts(**values)


LITTER = rule(code="MEI-51", name="乱倒垃圾", sign=-1, points=2, repeat_window=Window.year,
              repeat_multiplier=2, repeat_points=10)  # fmt: skip
PROMO = rule(code="MEI-05", campaign_name="宣传月", campaign_from=date(2026, 11, 1),
             campaign_to=date(2026, 11, 30), campaign_multiplier=2)  # fmt: skip
DATED = rule(code="MEI-09", campaign_name="冬季扫雪", campaign_from=date(2026, 12, 1),
             campaign_to=date(2027, 2, 28))  # fmt: skip
CLEAN = rule(code="FZ-21", name="当月无违规", category="法治", points=2, auto="month")
CLEAN3 = rule(code="FZ-23", name="连续三个月无违法", category="法治", points=5, auto="month",
              auto_months=3, auto_watch={"法治"})  # fmt: skip
MEETINGS = rule(code="ZZ-21", name="本季度参加会议满 3 次", category="自治", points=3,
                auto="quarter", auto_min_count=3, auto_watch={"ZZ-01"})  # fmt: skip


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field", "code"),
    [
        (dict(notice_days=-1), "notice_days", "notice_days_invalid"),
        (dict(notice_days=31), "notice_days", "notice_days_invalid"),
        (dict(repeat_window=Window.year, repeat_multiplier=2), "repeat_window", "repeat_on_award"),
        (dict(sign=-1, repeat_multiplier=2), "repeat_window", "repeat_window_missing"),
        (dict(sign=-1, repeat_window=Window.year), "repeat_multiplier", "repeat_rule_missing"),
        (dict(sign=-1, repeat_window=Window.ever, repeat_multiplier=2), "repeat_window",
         "repeat_window_unknown"),
        (dict(sign=-1, repeat_window=Window.year, repeat_multiplier=1), "repeat_multiplier",
         "repeat_multiplier_invalid"),
        (dict(sign=-1, repeat_window=Window.year, repeat_points=0), "repeat_points",
         "repeat_points_invalid"),
        (dict(veto=Window.year), "veto", "veto_on_award"),
        (dict(sign=-1, veto=Window.day), "veto", "veto_window_unknown"),
        (dict(auto="week"), "auto", "auto_period_unknown"),
        (dict(auto="month", sign=-1), "auto", "auto_deduction"),
        (dict(auto="month", points=None, min_points=1, max_points=5), "points",
         "auto_needs_fixed_points"),
        (dict(auto="quarter", auto_months=2), "auto_months", "auto_months_invalid"),
        (dict(auto="month", auto_months=37), "auto_months", "auto_months_invalid"),
        (dict(auto="month", auto_min_count=0), "auto_min_count", "auto_count_invalid"),
        (dict(auto="month", auto_watch={"乡风"}), "auto_watch", "auto_watch_unknown"),
        (dict(auto_months=3), "auto", "auto_fields_unexpected"),
        (dict(campaign_name="宣传月"), "campaign_name", "campaign_incomplete"),
        (dict(campaign_name="宣传月", campaign_from=date(2026, 12, 1),
              campaign_to=date(2026, 11, 1)), "campaign_from", "campaign_inverted"),
        (dict(campaign_name="宣传月", campaign_from=date(2026, 11, 1),
              campaign_to=date(2026, 11, 30), campaign_multiplier=1), "campaign_multiplier",
         "campaign_multiplier_invalid"),
        (dict(sign=-1, name="越级上访"), "name", "protected_right"),
        (dict(sign=-1, description="向上级信访反映"), "name", "protected_right"),
        (dict(auto="month", name="当月未举报"), "name", "protected_right"),
        (dict(caps={Window.ever: 3}), "caps", "cap_below_points"),
    ],
)  # fmt: skip
def test_invalid_new_fields_are_refused_by_field(kw, field, code):
    problems = validate_rule(rule(**kw))
    assert (field, code) in [(p.field, p.code) for p in problems], problems


@pytest.mark.parametrize("r", [LITTER, PROMO, DATED, CLEAN, CLEAN3, MEETINGS,
                               rule(once=True, caps={Window.ever: 5}, notice_days=0),
                               rule(sign=-1, veto=Window.period), rule(name="依法上访获表扬")])  # fmt: skip
def test_valid_new_rules_pass_and_round_trip_through_json(r):
    assert validate_rule(r) == []
    assert rule_from_dict(rule_to_dict(r)) == r


def test_a_condition_must_watch_codes_of_its_catalog_and_no_protected_right():
    watcher = rule(code="AUTO-01", auto="month", auto_min_count=1, auto_watch={"JD-01", "XX-9"})
    right = rule(code="JD-01", name="参与村务监督")
    problems = [(p.rule_code, p.code) for p in check_rules([right, watcher])]
    assert problems == [("AUTO-01", "protected_right"), ("AUTO-01", "auto_watch_missing")]


# --- decide ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "points", "note"),
    [
        (0, -2, None),
        (1, -4, "一年内第 2 次，按 2 倍扣分"),
        (2, -10, "一年内第 3 次，按加重标准扣 10 分"),
        (5, -10, "一年内第 6 次，按加重标准扣 10 分"),
    ],
)
def test_repeat_deductions_escalate(earlier, points, note):
    d = decide(LITTER, facts(repeats=earlier))
    assert (d.ok, d.points, d.note, d.needs_review) == (True, points, note, True)


def test_without_a_third_step_the_multiplier_goes_on():
    r = rule(sign=-1, points=3, repeat_window=Window.month, repeat_multiplier=3)
    assert [decide(r, facts(repeats=n)).points for n in range(3)] == [-3, -9, -9]
    assert decide(r, facts(repeats=2)).note == "一个月内第 3 次，按 3 倍扣分"


def test_escalation_still_respects_caps():
    r = rule(sign=-1, points=2, repeat_window=Window.year, repeat_points=10, caps={Window.month: 6})
    d = decide(r, facts(repeats=2, used={Window.month: 0}))
    assert (d.points, d.requested) == (-6, -10) and "本次扣 6 分" in d.message


@pytest.mark.parametrize(
    ("on", "points", "note"),
    [
        (date(2026, 10, 31), 5, None),
        (date(2026, 11, 1), 10, "“宣传月”期间按 2 倍计分"),
        (date(2026, 11, 30), 10, "“宣传月”期间按 2 倍计分"),
        (date(2026, 12, 1), 5, None),
    ],
)
def test_a_campaign_multiplies_inside_its_dates(on, points, note):
    d = decide(PROMO, facts(occurred_on=on))
    assert (d.points, d.note) == (points, note)


@pytest.mark.parametrize(
    ("on", "ok"),
    [(date(2026, 11, 30), False), (date(2026, 12, 1), True), (date(2027, 3, 1), False)],
)
def test_a_dated_rule_exists_only_between_its_dates(on, ok):
    d = decide(DATED, facts(occurred_on=on))
    assert d.ok is ok
    if not ok:
        assert d.code == "campaign_inactive" and "2026-12-01 至 2027-02-28" in d.message


@pytest.mark.parametrize(("ever", "ok"), [(0, True), (1, False), (3, False)])
def test_once_only(ever, ok):
    d = decide(rule(once=True), facts(ever=ever))
    assert d.ok is ok and (ok or d.code == "once_done")


@pytest.mark.parametrize(("used", "points"), [(0, 5), (8, 2), (10, 0)])
def test_a_lifetime_cap_counts_everything(used, points):
    d = decide(rule(caps={Window.ever: 10}), facts(used={Window.ever: used}))
    assert d.points == points
    if not points:
        assert d.code == "cap_reached" and "累计最多 10 分" in d.message


def test_automatic_rules_cannot_be_recorded():
    d = decide(CLEAN, facts(recorder_role="admin"))
    assert (d.ok, d.code, d.message) == (
        False,
        "auto_rule",
        "本项由系统按条件自动评定，不能手工登记",
    )


# --- conditions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("r", "deductions", "awards", "met"),
    [
        (CLEAN, 0, 0, True),
        (CLEAN, 0, 9, True),
        (CLEAN, 1, 0, False),
        (MEETINGS, 0, 2, False),
        (MEETINGS, 0, 3, True),
        (MEETINGS, 4, 3, True),
    ],
)
def test_condition_met(r, deductions, awards, met):
    assert condition_met(r, deductions=deductions, awards=awards) is met


@pytest.mark.parametrize(
    ("r", "end", "window"),
    [
        (CLEAN, date(2026, 12, 1), (date(2026, 11, 1), date(2026, 12, 1))),
        (CLEAN3, date(2026, 12, 1), (date(2026, 9, 1), date(2026, 12, 1))),
        (CLEAN3, date(2027, 2, 1), (date(2026, 11, 1), date(2027, 2, 1))),
        (MEETINGS, date(2027, 1, 1), (date(2026, 10, 1), date(2027, 1, 1))),
        (rule(auto="year", auto_watch={"法治"}), date(2027, 1, 1), (date(2026, 1, 1), date(2027, 1, 1))),
    ],
)  # fmt: skip
def test_condition_windows(r, end, window):
    assert condition_window(r, end) == window


@pytest.mark.parametrize(
    ("r", "text"),
    [
        (CLEAN, "每月自动评定：当月无扣分（任何项目）"),
        (CLEAN3, "每月自动评定：连续 3 个月无扣分（法治）"),
        (MEETINGS, "每季度自动评定：本季度得分记录满 3 次（ZZ-01）"),
        (rule(auto="year", auto_watch={"法治"}), "每年自动评定：全年无扣分（法治）"),
    ],
)
def test_conditions_read_in_plain_chinese(r, text):
    assert describe_condition(r) == text


def test_features_for_the_public_page():
    assert rule_features(LITTER) == ["一年内第 2 次按 2 倍扣分", "一年内第 3 次起每次扣 10 分"]
    assert rule_features(rule(sign=-1, veto=Window.year)) == ["一票否决：当年不能上红榜、不评星级"]
    assert rule_features(rule(notice_days=0)) == ["无需公示，登记即入账"]
    assert rule_features(DATED) == ["仅在“冬季扫雪”期间（2026-12-01 至 2027-02-28）有效"]


# --- dry run ----------------------------------------------------------------------------------------


def test_the_dry_run_replays_escalation_once_only_and_campaigns():
    once = rule(code="JIAN-05", points=2, once=True)
    acts = [
        PastAct(1, "MEI-51", date(2026, 3, 1)),
        PastAct(1, "MEI-51", date(2026, 5, 1)),
        PastAct(1, "MEI-51", date(2026, 7, 1)),
        PastAct(2, "JIAN-05", date(2026, 3, 1)),
        PastAct(2, "JIAN-05", date(2026, 6, 1)),
        PastAct(3, "MEI-05", date(2026, 11, 2)),
    ]
    assert replay([LITTER, once, PROMO], acts, period_kind="quarter") == [-2, -4, -10, 2, 0, 10]
    plain = rule(code="MEI-51", sign=-1, points=2)
    assert replay([plain], acts[:3], period_kind="quarter") == [-2, -2, -2]


def test_the_dry_run_evaluates_automatic_rules_from_the_replayed_acts():
    acts = [
        PastAct(1, "MEI-51", date(2026, 10, 5)),  # litters in October
        PastAct(2, "ZZ-01", date(2026, 10, 9)),
        PastAct(2, "FZ-21", date(2026, 10, 31)),  # a past automatic award: re-evaluated instead
    ]
    meeting = rule(code="ZZ-01", category="自治", points=1)
    rules = [LITTER, meeting, CLEAN]
    points = replay(rules, acts, period_kind="quarter")
    assert points == [-2, 1, 0]
    given = auto_awards(
        rules, acts, points, subjects=[1, 2, 3], start=date(2026, 9, 15), end=date(2026, 12, 10)
    )
    assert given == {1: 2, 2: 4, 3: 4}  # October and November; household 1 misses October
    # Dropping the monthly award from the draft shows in the scores.
    result = dry_run(
        old_rules=rules,
        new_rules=[LITTER, meeting],
        acts=acts,
        period_kind="quarter",
        subjects=[1, 2, 3],
        auto_from=date(2026, 9, 15),
        auto_to=date(2026, 12, 10),
    )
    scores = {r.subject_id: (r.old_score, r.new_score) for r in result.rows}
    assert scores == {1: (0, -2), 2: (5, 1), 3: (4, 0)}
