"""Dry run: a draft catalog replayed over past acts, caps recomputed, scores and ranks compared."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from points.catalog.dryrun import PastAct, dry_run, replay
from points.catalog.rules import Rule, Unit, Window


def rule(code: str = "A-1", **kw) -> Rule:
    values = dict(code=code, name=code, category="德治", points=5)
    if "min_points" in kw:
        values["points"] = None
    values.update(kw)
    return Rule(**values)


def act(subject: int = 1, code: str = "A-1", on: str = "2026-03-02", **kw) -> PastAct:
    return PastAct(subject_id=subject, rule_code=code, on=date.fromisoformat(on), **kw)


# Each case: the rule, the acts (code A-1, subject 1) and each act's points, caps applied in order.
CAP_CASES = {
    "uncapped": (rule(), [act(), act(), act()], [5, 5, 5]),
    "month cap cuts the third": (
        rule(caps={Window.month: 12}),
        [act(on="2026-03-01"), act(on="2026-03-15"), act(on="2026-03-31")],
        [5, 5, 2],
    ),
    "a new month starts afresh": (
        rule(caps={Window.month: 5}),
        [act(on="2026-03-31"), act(on="2026-04-01"), act(on="2026-04-02")],
        [5, 5, 0],
    ),
    "day cap per local date": (
        rule(caps={Window.day: 5}),
        [act(on="2026-03-02"), act(on="2026-03-02"), act(on="2026-03-03")],
        [5, 0, 5],
    ),
    "quarter period spans months": (
        rule(caps={Window.period: 10}),
        [act(on="2026-01-10"), act(on="2026-03-10"), act(on="2026-03-20"), act(on="2026-04-01")],
        [5, 5, 0, 5],
    ),
    "year cap across periods": (
        rule(caps={Window.year: 12, Window.month: 10}),
        [act(on="2026-01-10"), act(on="2026-05-10"), act(on="2026-09-10"), act(on="2027-01-02")],
        [5, 5, 2, 5],
    ),
    "hours multiply the unit points": (
        rule(unit=Unit.hour, points=2, caps={Window.day: 8}),
        [act(quantity=3), act(quantity=3), act(on="2026-03-03", quantity=5)],
        [6, 2, 8],
    ),
    "days multiply too": (
        rule(unit=Unit.day, points=3),
        [act(quantity=4)],
        [12],
    ),
    "acts are taken by date, not by list order": (
        rule(caps={Window.month: 5}),
        [act(on="2026-03-20", quantity=1), act(on="2026-03-01", quantity=1)],
        [0, 5],
    ),
    "caps count per subject": (
        rule(caps={Window.month: 5}),
        [act(subject=1), act(subject=2), act(subject=1)],
        [5, 5, 0],
    ),
    "a deduction is capped by magnitude": (
        rule(sign=-1, points=4, caps={Window.month: 6}),
        [act(), act(on="2026-03-05")],
        [-4, -2],
    ),
    "a range keeps the recorder's choice": (
        rule(min_points=2, max_points=10),
        [act(points_per_unit=7), act(points_per_unit=10)],
        [7, 10],
    ),
    "an implausible quantity scores nothing": (rule(), [act(quantity=5000)], [0]),
}


@pytest.mark.parametrize(("the_rule", "acts", "expected"), CAP_CASES.values(), ids=CAP_CASES)
def test_replay_applies_units_and_caps_in_date_order(the_rule, acts, expected):
    assert replay([the_rule], acts, period_kind="quarter") == expected


def test_replay_marks_acts_whose_rule_the_catalog_lacks():
    assert replay([rule("A-1")], [act(code="B-1"), act()], period_kind="month") == [None, 5]


def test_a_narrower_range_clamps_old_choices():
    acts = [act(points_per_unit=2), act(points_per_unit=10), act()]
    assert replay([rule(min_points=4, max_points=8)], acts, period_kind="month") == [4, 8, 4]


def test_a_rule_that_no_longer_applies_to_the_subject_scores_zero():
    party_only = rule(subjects={"party_member"})
    assert replay([party_only], [act(subject_kind="household")], period_kind="month") == [0]


def test_the_same_catalog_changes_nothing():
    rules = [rule("A-1", caps={Window.month: 10}), rule("B-1", points=3)]
    acts = [act(1), act(1), act(1), act(2, "B-1"), act(3, "B-1", on="2026-03-05")]
    result = dry_run(old_rules=rules, new_rules=rules, acts=acts, period_kind="quarter")
    assert result.changed_acts == 0 and result.changed_rows == ()
    assert [(r.subject_id, r.old_score, r.new_score) for r in result.rows] == [
        (1, 10, 10),
        (2, 3, 3),
        (3, 3, 3),
    ]


def test_a_new_value_moves_scores_and_ranks():
    old = [rule("A-1", points=5), rule("B-1", points=3, caps={Window.month: 6})]
    new = [rule("A-1", points=2), rule("B-1", points=4, caps={Window.month: 8})]
    acts = [
        act(1, "A-1"),
        act(1, "A-1"),
        act(2, "B-1"),
        act(2, "B-1"),
        act(2, "B-1"),  # capped both ways: 3+3+0 before, 4+4+0 after
        act(3, "A-1"),
    ]
    result = dry_run(
        old_rules=old, new_rules=new, acts=acts, period_kind="quarter", base_score=60, subjects=[4]
    )
    rows = {
        r.subject_id: (r.old_score, r.new_score, r.change, r.old_rank, r.new_rank)
        for r in result.rows
    }
    assert rows == {
        1: (70, 64, -6, 1, 2),
        2: (66, 68, 2, 2, 1),
        3: (65, 62, -3, 3, 3),
        4: (60, 60, 0, 4, 4),  # no acts: the base score, still ranked
    }
    assert [r.subject_id for r in result.rows] == [2, 1, 3, 4]
    assert result.acts == 6 and result.changed_acts == 5
    assert {r.subject_id for r in result.changed_rows} == {1, 2, 3}


def test_ties_share_a_rank():
    acts = [act(1), act(2), act(3, "B-1")]
    rules = [rule("A-1"), rule("B-1", points=1)]
    result = dry_run(old_rules=rules, new_rules=rules, acts=acts, period_kind="month")
    assert [(r.subject_id, r.new_rank) for r in result.rows] == [(1, 1), (2, 1), (3, 3)]


def test_removed_and_unknown_rules_are_counted():
    old = [rule("A-1"), rule("B-1")]
    new = [rule("A-1"), rule("C-1")]
    acts = [act(1, "A-1"), act(1, "B-1"), act(2, "B-1"), act(2, "C-1"), act(2, "Z-9")]
    result = dry_run(old_rules=old, new_rules=new, acts=acts, period_kind="month")
    assert result.missing_new == {"B-1": 2, "Z-9": 1}
    assert result.missing_old == {"C-1": 1, "Z-9": 1}
    rows = {r.subject_id: (r.old_score, r.new_score) for r in result.rows}
    assert rows == {1: (10, 5), 2: (5, 5)}


def test_an_award_turned_deduction_counts_against_the_subject():
    old = [rule("A-1")]
    new = [dataclasses.replace(rule("A-1"), sign=-1)]
    result = dry_run(old_rules=old, new_rules=new, acts=[act()], period_kind="month")
    assert (result.rows[0].old_score, result.rows[0].new_score) == (5, -5)
