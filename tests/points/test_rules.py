"""The pure rules engine: what a recorder, a resident or a reviewer sees for one recorded act."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from points.catalog.rules import (
    MAX_QUANTITY,
    ROLE_TEXT,
    ROLES,
    SUBJECT_KINDS,
    UNIT_TEXT,
    WINDOW_TEXT,
    Decision,
    Facts,
    Review,
    Rule,
    Unit,
    Window,
    decide,
    rule_from_dict,
    rule_to_dict,
    validate_rule,
)

ALL_ROLES = frozenset({"admin", "recorder", "resident"})


def make_rule(**overrides) -> Rule:
    """A valid fixed award of 5 points per time, uncapped, recordable by staff and residents."""
    values = dict(
        code="T-1",
        name="测试项目",
        category="德治",
        subcategory="积善",
        points=5,
        recorder_roles=ALL_ROLES,
        subjects={"household", "resident"},
    )
    if "min_points" in overrides or "max_points" in overrides:
        values["points"] = None
    values.update(overrides)
    return Rule(**values)


def make_facts(**overrides) -> Facts:
    """A grid worker records one occurrence for a household, with a reason and a photo."""
    values = dict(
        subject_kind="household", recorder_role="recorder", reason="已核实", has_evidence=True
    )
    values.update(overrides)
    return Facts(**values)


def assert_refused(decision: Decision, code: str, *fragments: str) -> None:
    assert decision.ok is False
    assert decision.points == 0
    assert decision.code == code
    assert decision.needs_review is False
    for fragment in fragments:
        assert fragment in decision.message


# --- units × quantities × fixed points ------------------------------------------------------


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("unit", list(Unit))
@pytest.mark.parametrize("quantity", [1, 2, 3, 7, 10, 100, MAX_QUANTITY])
@pytest.mark.parametrize("per_unit", [1, 2, 5, 50])
def test_fixed_points_times_quantity(sign, unit, quantity, per_unit):
    rule = make_rule(points=per_unit, unit=unit, sign=sign, recorder_roles={"admin", "recorder"})
    decision = decide(rule, make_facts(quantity=quantity))
    assert decision.ok is True
    assert decision.points == sign * per_unit * quantity
    assert decision.requested == decision.points
    assert decision.cuts == ()
    assert decision.code is None and decision.message is None


@pytest.mark.parametrize("unit", list(Unit))
@pytest.mark.parametrize("quantity", [0, -1, -100, MAX_QUANTITY + 1, 10_000, 2.5, "3"])
def test_quantity_out_of_bounds_is_refused_with_the_unit(unit, quantity):
    decision = decide(make_rule(unit=unit), make_facts(quantity=quantity))
    assert_refused(decision, "invalid_quantity", "1 到 1000", UNIT_TEXT[unit], f"现为 {quantity}")


# --- fixed vs range -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixed", "proposed", "expected"),
    [
        (5, None, 5),
        (5, 5, 5),
        (1, 1, 1),
        (50, None, 50),
        (50, 50, 50),
    ],
)
def test_fixed_rule_accepts_no_or_the_same_value(fixed, proposed, expected):
    decision = decide(make_rule(points=fixed), make_facts(proposed_points=proposed))
    assert decision.ok and decision.points == expected


@pytest.mark.parametrize(
    ("fixed", "proposed"), [(5, 6), (5, 4), (5, 0), (5, -5), (10, 100), (1, 2)]
)
def test_fixed_rule_refuses_another_value(fixed, proposed):
    decision = decide(make_rule(points=fixed), make_facts(proposed_points=proposed))
    assert_refused(decision, "points_fixed", f"固定每次 {fixed} 分", f"不能改为 {proposed} 分")


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize(
    ("lo", "hi", "proposed"),
    [(2, 10, 2), (2, 10, 6), (2, 10, 10), (1, 1, 1), (10, 30, 10), (10, 30, 29), (10, 30, 30)],
)
@pytest.mark.parametrize("quantity", [1, 3])
def test_range_rule_uses_the_proposed_value(sign, lo, hi, proposed, quantity):
    rule = make_rule(min_points=lo, max_points=hi, sign=sign, recorder_roles={"admin"})
    decision = decide(
        rule, make_facts(recorder_role="admin", proposed_points=proposed, quantity=quantity)
    )
    assert decision.ok
    assert decision.points == sign * proposed * quantity


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize(
    ("lo", "hi", "proposed"),
    [(2, 10, 1), (2, 10, 11), (2, 10, 0), (2, 10, -5), (10, 30, 9), (10, 30, 31), (1, 1, 2)],
)
def test_range_rule_refuses_a_value_outside(sign, lo, hi, proposed):
    rule = make_rule(min_points=lo, max_points=hi, sign=sign, recorder_roles={"admin"})
    decision = decide(rule, make_facts(recorder_role="admin", proposed_points=proposed))
    assert_refused(decision, "points_out_of_range", f"{lo}–{hi} 分", f"{proposed} 分超出范围")


@pytest.mark.parametrize("unit", list(Unit))
def test_range_rule_needs_a_value(unit):
    decision = decide(make_rule(min_points=2, max_points=8, unit=unit), make_facts())
    assert_refused(decision, "points_required", f"本项每{UNIT_TEXT[unit]} 2–8 分", "请填写分值")


# --- reasons and evidence -------------------------------------------------------------------

BLANKS = [None, "", "   ", "\n\t"]


@pytest.mark.parametrize("reason", BLANKS)
def test_deduction_needs_a_reason(reason):
    decision = decide(
        make_rule(sign=-1, recorder_roles={"admin"}),
        make_facts(recorder_role="admin", reason=reason),
    )
    assert_refused(decision, "reason_required", "扣分须写明理由")


@pytest.mark.parametrize("reason", BLANKS)
def test_range_award_needs_a_reason(reason):
    rule = make_rule(min_points=1, max_points=10)
    decision = decide(rule, make_facts(proposed_points=3, reason=reason))
    assert_refused(decision, "reason_required", "须写明理由")


@pytest.mark.parametrize("reason", BLANKS)
def test_range_deduction_reason_message_names_the_deduction(reason):
    rule = make_rule(min_points=1, max_points=10, sign=-1, recorder_roles={"admin"})
    decision = decide(rule, make_facts(recorder_role="admin", proposed_points=3, reason=reason))
    assert_refused(decision, "reason_required", "扣分须写明理由")


@pytest.mark.parametrize("reason", BLANKS)
def test_fixed_award_needs_no_reason(reason):
    decision = decide(make_rule(), make_facts(reason=reason))
    assert decision.ok and decision.points == 5


@pytest.mark.parametrize(
    ("required", "has_evidence", "ok"),
    [(True, True, True), (True, False, False), (False, True, True), (False, False, True)],
)
@pytest.mark.parametrize("sign", [1, -1])
def test_evidence(required, has_evidence, ok, sign):
    rule = make_rule(evidence_required=required, sign=sign, recorder_roles={"admin", "recorder"})
    decision = decide(rule, make_facts(has_evidence=has_evidence))
    if ok:
        assert decision.ok and decision.points == sign * 5
    else:
        assert_refused(decision, "evidence_required", "证明材料")


# --- who may record, for whom ---------------------------------------------------------------

ROLE_SETS = [{"admin"}, {"admin", "recorder"}, {"admin", "recorder", "resident"}, {"clerk"}]


@pytest.mark.parametrize("allowed", ROLE_SETS, ids=lambda s: "+".join(sorted(s)))
@pytest.mark.parametrize("role", ROLES)
def test_only_listed_roles_may_record(allowed, role):
    decision = decide(make_rule(recorder_roles=allowed), make_facts(recorder_role=role))
    if role in allowed:
        assert decision.ok and decision.points == 5
    elif role == "resident":
        assert_refused(decision, "role_not_allowed", "不接受村民自行申报", "网格员")
    else:
        names = [ROLE_TEXT[r] for r in allowed]
        assert_refused(decision, "role_not_allowed", *names, f"{ROLE_TEXT[role]}不能登记")


def test_unknown_role_is_refused_by_name():
    decision = decide(make_rule(), make_facts(recorder_role="supervisor"))
    assert_refused(decision, "role_not_allowed", "supervisor不能登记")


SUBJECT_SETS = [{"household"}, {"resident"}, {"party_member"}, {"household", "resident"}]
SUBJECT_NAMES = {"household": "农户", "resident": "村民个人", "party_member": "党员"}


@pytest.mark.parametrize("subjects", SUBJECT_SETS, ids=lambda s: "+".join(sorted(s)))
@pytest.mark.parametrize("kind", SUBJECT_KINDS)
def test_rule_applies_only_to_its_subjects(subjects, kind):
    decision = decide(make_rule(subjects=subjects), make_facts(subject_kind=kind))
    if kind in subjects:
        assert decision.ok
    else:
        names = [SUBJECT_NAMES[s] for s in subjects]
        assert_refused(decision, "subject_not_applicable", *names, f"不适用于{SUBJECT_NAMES[kind]}")


# --- order of checks: the first failing one is reported -------------------------------------

EVERYTHING_WRONG = dict(
    subject_kind="party_member",
    recorder_role="clerk",
    quantity=0,
    proposed_points=99,
    reason=None,
    has_evidence=False,
)
ORDER = [
    ("subject_not_applicable", {}),
    ("role_not_allowed", {"subject_kind": "household"}),
    ("invalid_quantity", {"subject_kind": "household", "recorder_role": "admin"}),
    ("points_fixed", {"subject_kind": "household", "recorder_role": "admin", "quantity": 1}),
    (
        "reason_required",
        {
            "subject_kind": "household",
            "recorder_role": "admin",
            "quantity": 1,
            "proposed_points": 5,
        },
    ),
    (
        "evidence_required",
        {
            "subject_kind": "household",
            "recorder_role": "admin",
            "quantity": 1,
            "proposed_points": 5,
            "reason": "乱倒垃圾，有照片",
        },
    ),
]


@pytest.mark.parametrize(("code", "fixes"), ORDER, ids=[c for c, _ in ORDER])
def test_checks_run_in_a_fixed_order(code, fixes):
    rule = make_rule(
        sign=-1, recorder_roles={"admin"}, subjects={"household"}, evidence_required=True
    )
    decision = decide(rule, make_facts(**{**EVERYTHING_WRONG, **fixes}))
    assert_refused(decision, code)


def test_range_checks_come_before_reason_and_evidence():
    rule = make_rule(min_points=1, max_points=5, evidence_required=True)
    bare = dict(reason=None, has_evidence=False)
    assert decide(rule, make_facts(**bare)).code == "points_required"
    assert decide(rule, make_facts(proposed_points=9, **bare)).code == "points_out_of_range"
    assert decide(rule, make_facts(proposed_points=3, **bare)).code == "reason_required"
    assert (
        decide(rule, make_facts(proposed_points=3, has_evidence=False)).code == "evidence_required"
    )


def test_caps_are_checked_last():
    rule = make_rule(caps={Window.month: 5}, evidence_required=True)
    exhausted = {Window.month: 5}
    assert decide(rule, make_facts(has_evidence=False, used=exhausted)).code == "evidence_required"
    assert decide(rule, make_facts(used=exhausted)).code == "cap_reached"


# --- each cap window alone ------------------------------------------------------------------

# cap, used, per unit, quantity, points granted, whether the window cut
SINGLE_CAP = [
    (20, 0, 5, 1, 5, False),
    (20, 0, 5, 4, 20, False),
    (20, 0, 5, 5, 20, True),
    (20, 15, 5, 1, 5, False),
    (20, 15, 5, 2, 5, True),
    (20, 19, 5, 1, 1, True),
    (20, 10, 3, 10, 10, True),
    (2, 0, 1, 3, 2, True),
    (100, 99, 50, 1, 1, True),
]


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("window", list(Window))
@pytest.mark.parametrize(("cap", "used", "per_unit", "quantity", "granted", "cut"), SINGLE_CAP)
def test_single_cap_window(sign, window, cap, used, per_unit, quantity, granted, cut):
    rule = make_rule(points=per_unit, sign=sign, caps={window: cap}, recorder_roles={"admin"})
    facts = make_facts(recorder_role="admin", quantity=quantity, used={window: used})
    decision = decide(rule, facts)
    assert decision.ok
    assert decision.points == sign * granted
    assert decision.requested == sign * per_unit * quantity
    every, this = WINDOW_TEXT[window]
    if not cut:
        assert decision.cuts == () and decision.message is None
        return
    (only,) = decision.cuts
    assert (only.window, only.cap, only.requested, only.allowed) == (
        window,
        cap,
        per_unit * quantity,
        granted,
    )
    if sign > 0:
        expected = f"本项{every}最多 {cap} 分，{this}已得 {used} 分，本次按 {granted} 分计"
    else:
        expected = f"本项{every}最多扣 {cap} 分，{this}已扣 {used} 分，本次扣 {granted} 分"
    assert only.message == expected
    assert decision.message == expected


def test_monthly_cap_message_reads_as_a_villager_expects():
    rule = make_rule(points=5, caps={"month": 20})
    decision = decide(rule, make_facts(quantity=2, used={"month": 15}))
    assert decision.points == 5
    assert decision.message == "本项每月最多 20 分，本月已得 15 分，本次按 5 分计"


@pytest.mark.parametrize("window", list(Window))
@pytest.mark.parametrize("used", [0, 5])
def test_unused_window_is_not_cut(window, used):
    rule = make_rule(points=5, caps={window: 100})
    assert decide(rule, make_facts(used={window: used})).cuts == ()


@pytest.mark.parametrize("window", list(Window))
def test_negative_used_does_not_enlarge_a_cap(window):
    rule = make_rule(points=5, caps={window: 10})
    decision = decide(rule, make_facts(quantity=4, used={window: -30}))
    assert decision.points == 10
    assert "已得 0 分" in decision.message


# --- several windows together: the tightest wins --------------------------------------------

# caps, used, quantity (5 points each), granted, windows that cut in day → year order, tightest
MULTI_CAP = [
    ({"day": 10, "month": 20}, {}, 1, 5, [], None),
    ({"day": 10, "month": 20}, {}, 3, 10, ["day"], "day"),
    ({"day": 10, "month": 20}, {"month": 15}, 3, 5, ["day", "month"], "month"),
    ({"day": 10, "month": 20}, {"day": 5, "month": 12}, 3, 5, ["day", "month"], "day"),
    ({"month": 20, "year": 50}, {"month": 5, "year": 45}, 2, 5, ["year"], "year"),
    ({"month": 20, "year": 50}, {"month": 18, "year": 45}, 2, 2, ["month", "year"], "month"),
    ({"day": 5, "month": 20, "period": 40, "year": 100}, {}, 2, 5, ["day"], "day"),
    (
        {"day": 50, "month": 40, "period": 30, "year": 20},
        {},
        10,
        20,
        ["month", "period", "year"],
        "year",
    ),
    (
        {"day": 50, "month": 40, "period": 30, "year": 100},
        {"year": 97},
        2,
        3,
        ["year"],
        "year",
    ),
    ({"period": 30, "year": 100}, {"period": 28, "year": 98}, 1, 2, ["period", "year"], "period"),
    ({"period": 30, "year": 100}, {"period": 10, "year": 10}, 4, 20, [], None),
]


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize(("caps", "used", "quantity", "granted", "cut", "tightest"), MULTI_CAP)
def test_several_windows_the_tightest_wins(sign, caps, used, quantity, granted, cut, tightest):
    rule = make_rule(points=5, sign=sign, caps=caps, recorder_roles={"admin"})
    decision = decide(rule, make_facts(recorder_role="admin", quantity=quantity, used=used))
    assert decision.ok
    assert decision.points == sign * granted
    assert decision.requested == sign * 5 * quantity
    assert [c.window for c in decision.cuts] == cut
    assert min((c.allowed for c in decision.cuts), default=5 * quantity) == granted
    if tightest is None:
        assert decision.message is None
    else:
        winner = next(c for c in decision.cuts if c.window == tightest)
        assert decision.message == winner.message
        assert f"本次{'按' if sign > 0 else '扣'} {granted} 分" in decision.message


# --- exhausted caps -------------------------------------------------------------------------


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("window", list(Window))
@pytest.mark.parametrize(("cap", "used"), [(20, 20), (20, 25), (1, 1), (10, 1000)])
def test_exhausted_window_refuses(sign, window, cap, used):
    rule = make_rule(points=5, sign=sign, caps={window: cap}, recorder_roles={"admin"})
    decision = decide(rule, make_facts(recorder_role="admin", quantity=2, used={window: used}))
    every, this = WINDOW_TEXT[window]
    verb = "已得" if sign > 0 else "已扣"
    most = "最多" if sign > 0 else "最多扣"
    assert_refused(
        decision, "cap_reached", f"本项{every}{most} {cap} 分，{this}{verb} {used} 分，已达上限"
    )
    assert decision.requested == sign * 10
    assert [(c.window, c.allowed) for c in decision.cuts] == [(window, 0)]


def test_one_exhausted_window_refuses_even_if_others_have_room():
    rule = make_rule(points=5, caps={"day": 10, "month": 20, "year": 100})
    decision = decide(rule, make_facts(quantity=3, used={"day": 0, "month": 20, "year": 50}))
    assert_refused(decision, "cap_reached", "本月已得 20 分，已达上限")
    assert [(c.window, c.allowed) for c in decision.cuts] == [("day", 10), ("month", 0)]


# --- review ---------------------------------------------------------------------------------

# review mode, sign, deduction_needs_review, needs review?
REVIEW = [
    (Review.always, 1, True, True),
    (Review.always, 1, False, True),
    (Review.always, -1, True, True),
    (Review.always, -1, False, True),
    (Review.never, 1, True, False),
    (Review.never, 1, False, False),
    (Review.never, -1, True, True),
    (Review.never, -1, False, False),
]


@pytest.mark.parametrize(("review", "sign", "deduction_flag", "expected"), REVIEW)
def test_review_modes(review, sign, deduction_flag, expected):
    rule = make_rule(review=review, sign=sign, recorder_roles={"admin"})
    facts = make_facts(recorder_role="admin", deduction_needs_review=deduction_flag)
    decision = decide(rule, facts)
    assert decision.ok and decision.points == sign * 5
    assert decision.needs_review is expected


BOUNDARY = [(t, t + d) for t in (1, 2, 5, 10, 20, 50) for d in (-1, 0, 1) if t + d >= 1]


@pytest.mark.parametrize(("threshold", "points"), BOUNDARY)
def test_threshold_boundary(threshold, points):
    rule = make_rule(points=points, review=Review.threshold, review_threshold=threshold)
    decision = decide(rule, make_facts())
    assert decision.points == points
    assert decision.needs_review is (points >= threshold)


@pytest.mark.parametrize("threshold", [5, 10, 20])
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_threshold_boundary_for_deductions_without_mandatory_review(threshold, offset):
    rule = make_rule(
        points=threshold + offset,
        sign=-1,
        review=Review.threshold,
        review_threshold=threshold,
        recorder_roles={"admin"},
    )
    decision = decide(rule, make_facts(recorder_role="admin", deduction_needs_review=False))
    assert decision.points == -(threshold + offset)
    assert decision.needs_review is (offset >= 0)


@pytest.mark.parametrize(("quantity", "expected"), [(1, False), (2, True), (3, True)])
def test_threshold_counts_the_whole_record(quantity, expected):
    rule = make_rule(points=6, review=Review.threshold, review_threshold=10)
    assert decide(rule, make_facts(quantity=quantity)).needs_review is expected


@pytest.mark.parametrize(("used", "expected"), [(0, True), (11, False), (10, True)])
def test_threshold_applies_to_points_after_caps(used, expected):
    rule = make_rule(points=10, caps={"month": 20}, review=Review.threshold, review_threshold=10)
    decision = decide(rule, make_facts(used={"month": used}))
    assert decision.needs_review is expected


def test_threshold_deduction_always_reviewed_by_default():
    rule = make_rule(
        points=1, sign=-1, review=Review.threshold, review_threshold=10, recorder_roles={"admin"}
    )
    assert decide(rule, make_facts(recorder_role="admin")).needs_review is True


# --- validate_rule --------------------------------------------------------------------------

VALID = [
    {},
    {"code": "A1"},
    {"code": "XIAO-01"},
    {"code": "ABCD-1234"},
    {"code": "FZ51"},
    {"sign": -1, "recorder_roles": {"admin"}},
    {"min_points": 1, "max_points": 1},
    {"min_points": 2, "max_points": 30, "caps": {"year": 60}},
    {"unit": Unit.hour, "caps": {Window.day: 8, Window.month: 40}},
    {"review": Review.threshold, "review_threshold": 10},
    {"review": Review.always},
    {"caps": {"day": 5, "month": 5, "period": 5, "year": 5}},
    {"category": "党建", "subjects": {"party_member"}},
    {"category": "自治", "subcategory": None},
    {"honourable": True},
]


@pytest.mark.parametrize("overrides", VALID)
def test_valid_rules_have_no_problem(overrides):
    assert validate_rule(make_rule(**overrides)) == []


# overrides, expected (field, code) problems, a fragment of the first message
INVALID = [
    ({"code": "xiao-01"}, [("code", "code_invalid")], "xiao-01"),
    ({"code": "ABCDE-1"}, [("code", "code_invalid")], "XIAO-01"),
    ({"code": "A-12345"}, [("code", "code_invalid")], "A-12345"),
    ({"code": "孝-1"}, [("code", "code_invalid")], "孝-1"),
    ({"code": ""}, [("code", "code_invalid")], "格式不对"),
    ({"code": "A--1"}, [("code", "code_invalid")], "A--1"),
    ({"name": "  "}, [("name", "name_required")], "名称"),
    ({"category": "平安"}, [("category", "category_unknown")], "平安"),
    ({"sign": 0}, [("sign", "sign_invalid")], "+1"),
    ({"sign": 2}, [("sign", "sign_invalid")], "-1"),
    (
        {"min_points": 1, "max_points": 5, "points": 3},
        [("points", "points_fixed_and_range")],
        "二选一",
    ),
    ({"points": None}, [("points", "points_missing")], "固定分值或分值区间"),
    ({"min_points": 1}, [("max_points", "range_incomplete")], "最低分和最高分"),
    ({"max_points": 5}, [("min_points", "range_incomplete")], "最低分和最高分"),
    ({"points": 0}, [("points", "points_not_positive")], "现为 0"),
    ({"points": -5}, [("points", "points_not_positive")], "现为 -5"),
    (
        {"min_points": 0, "max_points": -1},
        [
            ("min_points", "points_not_positive"),
            ("max_points", "points_not_positive"),
            ("min_points", "range_inverted"),
        ],
        "现为 0",
    ),
    (
        {"min_points": 10, "max_points": 2},
        [("min_points", "range_inverted")],
        "最低分 10 不能高于最高分 2",
    ),
    ({"unit": "week"}, [("unit", "unit_unknown")], "week"),
    ({"review": "sometimes"}, [("review", "review_unknown")], "sometimes"),
    ({"review": Review.threshold}, [("review_threshold", "threshold_missing")], "分值线"),
    ({"review_threshold": 10}, [("review_threshold", "threshold_unexpected")], "分值线"),
    (
        {"review": Review.threshold, "review_threshold": 0},
        [("review_threshold", "threshold_not_positive")],
        "正整数",
    ),
    ({"recorder_roles": set()}, [("recorder_roles", "roles_empty")], "角色"),
    ({"recorder_roles": {"admin", "boss"}}, [("recorder_roles", "role_unknown")], "boss"),
    ({"subjects": set()}, [("subjects", "subjects_empty")], "适用对象"),
    ({"subjects": {"household", "village"}}, [("subjects", "subject_unknown")], "village"),
    ({"caps": {"week": 10}}, [("caps", "cap_window_unknown")], "week"),
    ({"caps": {"month": 0}}, [("caps", "cap_not_positive")], "每月上限"),
    ({"caps": {"year": -5}}, [("caps", "cap_not_positive")], "每年上限"),
    (
        {"points": 10, "caps": {"day": 5}},
        [("caps", "cap_below_points")],
        "每天上限 5 分低于单次分值 10 分",
    ),
    (
        {"min_points": 1, "max_points": 30, "caps": {"month": 20}},
        [("caps", "cap_below_points")],
        "每月上限 20 分低于单次分值 30 分",
    ),
    (
        {"sign": -1, "honourable": True, "recorder_roles": {"admin"}},
        [("honourable", "deduction_honourable")],
        "红榜",
    ),
    ({"sign": -1}, [("recorder_roles", "resident_cannot_deduct")], "自行申报"),
]


@pytest.mark.parametrize(("overrides", "expected", "fragment"), INVALID)
def test_validate_rule_names_each_problem(overrides, expected, fragment):
    problems = validate_rule(make_rule(**overrides))
    assert [(p.field, p.code) for p in problems] == expected
    assert fragment in problems[0].message


def test_validate_rule_reports_every_problem_at_once():
    rule = make_rule(
        code="bad",
        name="",
        category="其他",
        sign=-1,
        points=None,
        recorder_roles=set(),
        subjects=set(),
        honourable=True,
    )
    codes = {p.code for p in validate_rule(rule)}
    assert codes == {
        "code_invalid",
        "name_required",
        "category_unknown",
        "points_missing",
        "roles_empty",
        "subjects_empty",
        "deduction_honourable",
    }


# --- JSON form ------------------------------------------------------------------------------

ROUND_TRIP = [
    {},
    {"sign": -1, "recorder_roles": {"admin"}, "evidence_required": True, "review": Review.always},
    {"min_points": 2, "max_points": 9, "unit": Unit.day, "caps": {Window.year: 30, Window.day: 9}},
    {"review": Review.threshold, "review_threshold": 10, "description": "说明"},
]


@pytest.mark.parametrize("overrides", ROUND_TRIP)
def test_rule_round_trips_through_its_json_form(overrides):
    rule = make_rule(**overrides)
    data = rule_to_dict(rule)
    assert rule_from_dict(data) == rule
    assert isinstance(data["unit"], str) and isinstance(data["recorder_roles"], list)
    assert list(data["caps"]) == [w.value for w in Window if w in rule.caps]


def test_rule_to_dict_lists_roles_in_a_stable_order():
    data = rule_to_dict(make_rule(recorder_roles={"resident", "admin", "recorder"}))
    assert data["recorder_roles"] == ["admin", "recorder", "resident"]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [({"cap": {"month": 5}}, "cap"), ({"unit": "week"}, "week"), ({"caps": {"week": 1}}, "week")],
)
def test_rule_from_dict_refuses_unknown_keys_and_values(bad, fragment):
    data = {**rule_to_dict(make_rule()), **bad}
    with pytest.raises(ValueError, match=fragment):
        rule_from_dict(data)


def test_rule_from_dict_fills_defaults():
    rule = rule_from_dict({"code": "A1", "name": "参加会议", "category": "自治", "points": 2})
    assert (rule.unit, rule.review, rule.caps, rule.sign) == (Unit.time, Review.never, {}, 1)
    assert validate_rule(rule) == []


# --- properties -----------------------------------------------------------------------------


@st.composite
def rule_and_facts(draw):
    sign = draw(st.sampled_from([1, -1]))
    caps = draw(st.dictionaries(st.sampled_from(list(Window)), st.integers(1, 300)))
    if draw(st.booleans()):
        per_unit = draw(st.integers(1, 50))
        rule = make_rule(points=per_unit, sign=sign, caps=caps, recorder_roles={"admin"})
        proposed = None
    else:
        lo = draw(st.integers(1, 30))
        hi = draw(st.integers(lo, 60))
        rule = make_rule(
            min_points=lo, max_points=hi, sign=sign, caps=caps, recorder_roles={"admin"}
        )
        proposed = draw(st.integers(lo, hi))
    used = draw(st.dictionaries(st.sampled_from(list(Window)), st.integers(0, 400)))
    facts = make_facts(
        recorder_role="admin",
        quantity=draw(st.integers(1, 40)),
        proposed_points=proposed,
        used=used,
    )
    return rule, facts


@given(rule_and_facts())
def test_caps_are_never_exceeded(pair):
    rule, facts = pair
    decision = decide(rule, facts)
    assert abs(decision.points) <= abs(decision.requested)
    if decision.ok:
        assert decision.points * rule.sign > 0
        for window, cap in rule.caps.items():
            assert facts.used.get(window, 0) + abs(decision.points) <= cap
        if not decision.cuts:
            assert decision.points == decision.requested
    else:
        assert decision.code == "cap_reached"
        assert any(facts.used.get(w, 0) >= cap for w, cap in rule.caps.items())
