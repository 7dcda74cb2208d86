"""`rule_of` keeps the Rules it built by the exact values of the row: a row answers with the
Rule its own values build, whatever was built before (another row of the same id, values that
are equal but of another type, a changed row)."""

from __future__ import annotations

from collections import namedtuple
from datetime import date

import pytest

from points.catalog import rules, versions
from points.catalog.rules import rule_from_dict

# A row as recording reads it (`find_rule_row`): every column by name, the rule's among them.
Row = namedtuple("Row", ["id", *versions.RULE_FIELDS])  # noqa: PYI024

STORED = {
    "code": "ZZ-01",
    "name": "参加村民会议",
    "category": "自治",
    "subcategory": None,
    "description": "",
    "sign": 1,
    "points": 2,
    "min_points": None,
    "max_points": None,
    "unit": "time",
    "caps": {"month": 6},
    "evidence_required": False,
    "review": "never",
    "review_threshold": None,
    "recorder_roles": ["admin", "recorder"],
    "subjects": ["household"],
    "honourable": False,
    "once": None,
    "notice_days": None,
    "repeat_window": None,
    "repeat_multiplier": None,
    "repeat_points": None,
    "veto": None,
    "auto": None,
    "auto_months": None,
    "auto_min_count": None,
    "auto_watch": None,
    "campaign_name": None,
    "campaign_from": None,
    "campaign_to": None,
    "campaign_multiplier": None,
}


def _exactly(rule):
    """A Rule's fields with their types (1 == True == 1.0, but they are not the same rule)."""
    return [(name, type(v), v) for name, v in vars(rule).items()]


def _same_as_built(row) -> None:
    built = rule_from_dict({name: getattr(row, name) for name in versions.RULE_FIELDS})
    assert _exactly(versions.rule_of(row)) == _exactly(built)


def test_a_row_is_built_once_and_answered_by_its_values():
    row = Row(id=1, **STORED)
    first = versions.rule_of(row)
    assert versions.rule_of(Row(id=1, **STORED)) is first
    _same_as_built(row)


@pytest.mark.parametrize(
    "changed",
    [
        {"points": 3},
        {"points": 2.0},  # equal to 2, not the same value
        {"sign": True},
        {"honourable": 0},
        {"evidence_required": 0},
        {"name": "另一项"},
        {"caps": {"month": 7}},
        {"caps": {"month": 6.0}},
        {"caps": {"month": 6, "year": 20}},
        {"caps": {"year": 20, "month": 6}},
        {"recorder_roles": ["admin"]},
        {"subjects": ["household", "resident"]},
        {"auto_watch": []},
        {"once": True},
        {"review": "always"},
    ],
)
def test_a_row_of_other_values_gets_its_own_rule(changed):
    before = versions.rule_of(Row(id=1, **STORED))
    # The same id (another database's row, or the row changed): its own values decide.
    row = Row(id=1, **{**STORED, **changed})
    _same_as_built(row)
    assert versions.rule_of(row) is not before
    assert versions.rule_of(Row(id=1, **STORED)) is before


def test_a_dated_rule_is_built_every_time():
    row = Row(id=2, **{**STORED, "campaign_name": "宣传月", "campaign_from": date(2026, 6, 1)})
    row = row._replace(campaign_to=date(2026, 6, 30))
    _same_as_built(row)
    assert versions.rule_of(row) == versions.rule_of(row)


def test_an_invalid_row_is_refused_every_time():
    row = Row(id=3, **{**STORED, "unit": "nope"})
    for _ in range(2):
        with pytest.raises(ValueError, match="ZZ-01"):
            versions.rule_of(row)


def test_the_kept_rules_are_bounded(monkeypatch):
    monkeypatch.setattr(versions, "_RULES", {})
    monkeypatch.setattr(versions, "_RULES_KEPT", 3)
    for points in range(1, 10):
        _same_as_built(Row(id=1, **{**STORED, "points": points}))
        assert len(versions._RULES) <= 3


def test_a_kept_rules_caps_cannot_be_changed_by_one_caller_for_the_next():
    # rule_of hands the same Rule to every request and thread: its caps must be read-only.
    rule = rules.Rule(code="A-1", name="x", category="c", points=5, caps={rules.Window.month: 10})
    with pytest.raises(TypeError):
        rule.caps[rules.Window.month] = 1000
    assert rule.caps == {rules.Window.month: 10}
