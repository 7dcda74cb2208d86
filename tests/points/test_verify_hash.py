"""verify's fast chain hash writes the same bytes as `entry_hash`, the chain's definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from points.ledger import GENESIS_HASH, HASHED_FIELDS, entry_hash
from points.ledger.verify import _SORTED_FIELDS, _row_hash

BASE = {
    "village_id": 3,
    "seq": 17,
    "kind": "award",
    "scheme_id": 5,
    "household_id": 1204,
    "resident_id": None,
    "period_key": "2026-Q4",
    "month": "2026-11",
    "score_delta": 7,
    "category": "德治",
    "memo": "义务劳动（两天）",
    "actor_id": None,
    "reverses_id": None,
    "idem_key": "a3:1204",
    "request_hash": "f" * 64,
    "created_at": datetime(2026, 11, 2, 2, 0, 0, 123456, tzinfo=UTC),
    "prev_hash": "a" * 64,
    "rule_id": None,
    "claim_id": 88,
}

ODD_TEXT = [
    "",
    'say "hi"',
    "back\\slash",
    "tab\tnew\nline\r",
    "\x00\x01\x1f control",
    "emoji 🎉 and 𠀀",
    "\u2028\u2029 separators",
    "村规民约：违反一次扣 5 分",
]


def _values(fields: dict) -> tuple:
    return tuple(fields[f] for f in _SORTED_FIELDS)


def test_the_fast_hash_covers_every_hashed_field():
    assert sorted(HASHED_FIELDS) == list(_SORTED_FIELDS)


@pytest.mark.parametrize("text", ODD_TEXT)
def test_the_fast_hash_matches_entry_hash_for_odd_text(text):
    fields = dict(BASE, memo=text, category=text or None, idem_key=f"k{text}")
    postings = [(9, -7), (4, 7)]
    expected = entry_hash("b" * 64, fields, postings)
    assert _row_hash("b" * 64, _values(fields), sorted(postings)) == expected


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"household_id": None, "resident_id": 77},
        {"score_delta": -5, "kind": "deduction"},
        {"score_delta": 0, "kind": "expiry", "claim_id": None, "category": None},
        {"reverses_id": 12, "actor_id": 2, "rule_id": 40},
        {"seq": 1, "prev_hash": GENESIS_HASH, "village_id": 2**40},
        {"created_at": datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=8)))},
    ],
)
def test_the_fast_hash_matches_entry_hash_for_each_shape(change):
    fields = dict(BASE, **change)
    for postings in ([(3, -10), (1, 4), (2, 6)], [(5, 2), (5, -2)], []):
        expected = entry_hash(GENESIS_HASH, fields, postings)
        assert _row_hash(GENESIS_HASH, _values(fields), sorted(postings)) == expected


def test_an_unexpected_value_type_falls_back_to_entry_hash():
    fields = dict(BASE, score_delta=True)
    assert _row_hash(GENESIS_HASH, _values(fields), []) is None
