"""The default catalogs a new village starts from: valid, complete, and safe to adopt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import points.catalog.rules
from points.catalog.rules import (
    CATEGORIES,
    MORAL_SUBCATEGORIES,
    Facts,
    Rule,
    decide,
    rule_from_dict,
    rule_to_dict,
    validate_rule,
)

CATALOGS = Path(points.catalog.rules.__file__).parent / "defaults"
# Words that would turn a deduction against petitioning or supervising the village committee.
FORBIDDEN_IN_DEDUCTIONS = ("上访", "信访", "监督", "举报", "投诉")


def load(scheme: str) -> tuple[dict, list[Rule]]:
    data = json.loads((CATALOGS / f"{scheme}.json").read_text(encoding="utf-8"))
    return data, [rule_from_dict(item) for item in data["rules"]]


HOUSEHOLD_DATA, HOUSEHOLD = load("household")
PARTY_DATA, PARTY = load("party")
ALL_RULES = [("household", r) for r in HOUSEHOLD] + [("party", r) for r in PARTY]


def rule_id(pair) -> str:
    return f"{pair[0]}:{pair[1].code}"


@pytest.mark.parametrize(("scheme", "data"), [("household", HOUSEHOLD_DATA), ("party", PARTY_DATA)])
def test_catalog_header(scheme, data):
    assert data["scheme"] == scheme
    assert data["name"].strip()
    assert set(data) == {"scheme", "name", "rules"}


@pytest.mark.parametrize("pair", ALL_RULES, ids=rule_id)
def test_every_default_rule_is_valid(pair):
    _, rule = pair
    assert validate_rule(rule) == []


@pytest.mark.parametrize("pair", ALL_RULES, ids=rule_id)
def test_json_is_the_canonical_form(pair):
    _, rule = pair
    assert rule_from_dict(rule_to_dict(rule)) == rule


@pytest.mark.parametrize("rules", [HOUSEHOLD, PARTY], ids=["household", "party"])
def test_codes_are_unique(rules):
    codes = [r.code for r in rules]
    assert len(codes) == len(set(codes))


def test_codes_are_unique_across_both_catalogs():
    assert not {r.code for r in HOUSEHOLD} & {r.code for r in PARTY}


def test_catalog_sizes_match_the_field():
    # Field catalogs hold 50–90 items; the party track is smaller but must cover 三会一课 and more.
    assert 50 <= len(HOUSEHOLD) <= 90
    assert len(PARTY) >= 20


def test_household_catalog_covers_every_category_of_the_field():
    categories = {r.category for r in HOUSEHOLD}
    assert categories == {"德治", "自治", "法治"}
    assert {r.category for r in PARTY} == {"党建"}
    assert categories | {"党建"} == set(CATEGORIES)


@pytest.mark.parametrize("subcategory", MORAL_SUBCATEGORIES)
def test_each_of_the_six_ji_has_awards(subcategory):
    awards = [r for r in HOUSEHOLD if r.subcategory == subcategory and r.sign == 1]
    assert len(awards) >= 3
    assert all(r.category == "德治" for r in awards)


@pytest.mark.parametrize(
    "words",
    [
        ("老人",),
        ("彩礼",),
        ("大操大办",),
        ("垃圾",),
        ("污水",),
        ("赌博",),
        ("封建迷信",),
        ("烟花爆竹",),
        ("村规民约",),
    ],
)
def test_field_deductions_are_present(words):
    names = [r.name for r in HOUSEHOLD if r.sign == -1]
    assert any(all(w in name for w in words) for name in names), words


@pytest.mark.parametrize(
    "word",
    [
        "村民会议",
        "院坝协商",
        "投票",
        "社情民意",
        "志愿服务",
        "红袖标",
        "安全隐患",
        "调解",
        "法律明白人",
        "普法",
    ],
)
def test_field_awards_are_present(word):
    assert any(word in r.name for r in HOUSEHOLD if r.sign == 1), word


@pytest.mark.parametrize(
    "word",
    [
        "认岗定责",
        "党员大会",
        "党小组会",
        "党课",
        "主题党日",
        "学习",
        "党费",
        "走访",
        "志愿服务",
        "结对帮扶",
    ],
)
def test_party_awards_are_present(word):
    assert any(word in r.name for r in PARTY if r.sign == 1), word


@pytest.mark.parametrize("word", ["组织生活", "党费"])
def test_party_deductions_are_present(word):
    assert any(word in r.name for r in PARTY if r.sign == -1), word


def test_big_honours_exist_and_are_reviewed():
    honours = [r for r in HOUSEHOLD if r.subcategory == "特殊嘉奖"]
    assert any("道德模范" in r.name for r in honours)
    assert max(r.points for r in honours) >= 20
    assert all(r.review == "always" and r.honourable and r.evidence_required for r in honours)


@pytest.mark.parametrize("pair", [p for p in ALL_RULES if p[1].sign == -1], ids=rule_id)
def test_no_deduction_punishes_petitioning_or_supervision(pair):
    _, rule = pair
    text = rule.name + rule.description
    assert not [w for w in FORBIDDEN_IN_DEDUCTIONS if w in text]


@pytest.mark.parametrize("pair", [p for p in ALL_RULES if p[1].sign == -1], ids=rule_id)
def test_deductions_are_staff_recorded_reviewed_and_proved(pair):
    _, rule = pair
    assert "resident" not in rule.recorder_roles
    assert rule.review == "always" and rule.evidence_required and not rule.honourable
    assert rule.caps, "a black mark without a cap could pile up without limit"
    assert 2 <= (rule.points or rule.max_points) <= 30


@pytest.mark.parametrize(
    "pair", [p for p in ALL_RULES if "resident" in p[1].recorder_roles], ids=rule_id
)
def test_self_declarations_need_evidence_and_review(pair):
    # "坐在家里编": a resident's own claim is only as good as its photo and the 评议小组's look.
    _, rule = pair
    assert rule.evidence_required and rule.review == "always"


@pytest.mark.parametrize("pair", [p for p in ALL_RULES if p[1].sign == 1], ids=rule_id)
def test_awards_are_capped_and_sensibly_valued(pair):
    _, rule = pair
    assert rule.caps
    assert 1 <= (rule.points or rule.max_points) <= 50


def test_party_rules_apply_to_party_members_only():
    assert all(r.subjects == {"party_member"} for r in PARTY)


def test_household_rules_apply_to_households():
    assert all("household" in r.subjects and "party_member" not in r.subjects for r in HOUSEHOLD)


@pytest.mark.parametrize("pair", [p for p in ALL_RULES if p[1].auto is None], ids=rule_id)
def test_each_default_rule_can_be_recorded_once(pair):
    # The first record of a month is never refused for a well-formed catalog item.
    _, rule = pair
    role = "admin" if "admin" in rule.recorder_roles else sorted(rule.recorder_roles)[0]
    facts = Facts(
        subject_kind=sorted(rule.subjects)[0],
        recorder_role=role,
        proposed_points=rule.min_points,
        reason="村两委核实",
        has_evidence=True,
    )
    decision = decide(rule, facts)
    assert decision.ok, decision.message
    assert decision.points == rule.sign * (rule.points or rule.min_points)


def test_the_household_catalog_uses_what_villages_write():
    """A monthly no-violation item, a once-only item and an escalating deduction (issue 16)."""
    by_code = {r.code: r for r in HOUSEHOLD}
    monthly = [r for r in HOUSEHOLD if r.auto == "month"]
    assert [(r.name, r.points, r.auto_min_count, r.auto_watch) for r in monthly] == [
        ("当月无违规", 2, None, frozenset())
    ]
    assert by_code["FZ-22"].auto == "year" and by_code["FZ-22"].auto_watch == {"法治"}
    assert by_code["JIAN-05"].once and by_code["JIAN-05"].caps == {"ever": 2}
    litter = by_code["MEI-51"]
    assert (litter.repeat_window, litter.repeat_multiplier, litter.repeat_points) == ("year", 2, 10)
    assert by_code["FZ-55"].veto == "year"


@pytest.mark.parametrize("pair", [p for p in ALL_RULES if p[1].auto is not None], ids=rule_id)
def test_automatic_default_rules_cannot_be_recorded_by_hand(pair):
    _, rule = pair
    decision = decide(rule, Facts(subject_kind="household", recorder_role="admin"))
    assert (decision.ok, decision.code) == (False, "auto_rule")
