"""The lean record endpoint loads its body with a planned `Loader` (a fast path for the common
valid body, marshmallow for everything else): whatever the body, the result or the error is
exactly marshmallow's `schema.load`, and the fast path is what loads a valid JSON body."""

from __future__ import annotations

import itertools
from datetime import date

import marshmallow as ma
import pytest

from api.claims.schemas import BatchInSchema, ClaimInSchema, ReviewInSchema
from api.lean import Loader

# Values of every JSON kind, and the edges of the claim schema's validators.
VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1000,
    1001,
    100000,
    100001,
    2**31 - 1,
    2**31,
    2**40,
    1.0,
    1.5,
    "",
    "1",
    "x",
    "x" * 16,
    "x" * 17,
    "x" * 32,
    "x" * 33,
    "字" * 1000,
    "字" * 1001,
    "2026-01-02",
    "2026-1-2",
    "20260102",
    "2026-02-30",
    "2026-01-02T00:00:00",
    "２０２６-01-02",
    [],
    [1],
    {},
    {"a": 1},
]
VALID = {"household_id": 3, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
FULL = {
    **VALID,
    "scheme": "resident",
    "resident_id": 9,
    "quantity": 2,
    "proposed_points": 20,
    "description": "扑灭邻居家火情",
    "expected_rule_id": 4,
    "expected_group_id": 5,
}


def _outcome(load, data):
    try:
        return "loaded", load(data)
    except ma.ValidationError as error:
        return "refused", error.messages


def _same(schema: ma.Schema, data) -> None:
    loader = Loader(schema)
    expected = _outcome(schema.load, data)
    assert _outcome(loader, data) == expected, data
    if expected[0] == "loaded" and isinstance(expected[1], dict):
        assert list(loader(data)) == list(expected[1])  # the keys in marshmallow's order


def _bodies():
    yield from (VALID, FULL, {}, {"nope": 1}, {**VALID, "nope": 1}, {**FULL, "nope": None})
    for name, value in itertools.product(ClaimInSchema().fields, VALUES):
        yield {**VALID, name: value}
        yield {**FULL, name: value}
        without = {k: v for k, v in FULL.items() if k != name}
        yield without
    yield {**VALID, "expected_group_id": 5}  # the schema's own hook refuses it
    yield {**VALID, "expected_rule_id": 4}


def test_the_claim_body_loads_as_marshmallow_loads_it():
    schema = ClaimInSchema()
    loader = Loader(schema)
    assert loader.steps is not None  # the record endpoint's schema is planned
    count = 0
    for body in _bodies():
        _same(schema, body)
        # A valid JSON body never falls back to marshmallow; an invalid one always does.
        loaded = _outcome(schema.load, body)[0] == "loaded"
        assert (loader._fast(body) is not None) == loaded, body
        count += 1
    assert count > 1000


@pytest.mark.parametrize("body", [None, [], [VALID], "x", 1, ma.missing])
def test_a_body_that_is_not_an_object_is_marshmallows_to_refuse(body):
    _same(ClaimInSchema(), body)


def test_a_date_object_is_loaded_by_marshmallow():
    _same(ClaimInSchema(), {**VALID, "occurred_on": date(2026, 1, 2)})


class _Renamed(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    shown = ma.fields.Integer(data_key="n", attribute="number", validate=ma.validate.Range(0))
    loose = ma.fields.Integer()  # not strict: "5" and 5.0 are loaded (by marshmallow)
    when = ma.fields.Date(format="iso8601", allow_none=True)
    made = ma.fields.String(load_default=lambda: "made")
    empty = ma.fields.String(load_default=None)

    @ma.validates_schema(pass_original=True)
    def _original(self, data, original, **kwargs):
        if original.get("n") == 7 and "when" not in data:
            raise ma.ValidationError("7 needs a date", "shown")

    @ma.validates_schema(pass_collection=True)
    def _collection(self, data, **kwargs):
        if data.get("made") == "bad":
            raise ma.ValidationError("bad")


@pytest.mark.parametrize(
    "body",
    [
        {"n": 1},
        {"n": -1},
        {"n": 7},
        {"n": 7, "when": None},
        {"n": 7, "when": "2026-01-02"},
        {"shown": 1},
        {"number": 1, "other": 2},
        {"loose": "5"},
        {"loose": 5.0},
        {"loose": 5},
        {"loose": True},
        {"made": "bad"},
        {"made": None},
        {"empty": None},
        {"empty": "x"},
    ],
)
def test_keys_defaults_policies_and_hooks_follow_marshmallow(body):
    _same(_Renamed(), body)


def test_schemas_the_plan_does_not_understand_are_loaded_by_marshmallow():
    class Hooked(ma.Schema):
        n = ma.fields.Integer()

        @ma.pre_load
        def _strip(self, data, **kwargs):
            return {k.strip(): v for k, v in data.items()}

    class Formatted(ma.Schema):
        day = ma.fields.Date(format="%d/%m/%Y")

    assert Loader(Hooked()).steps is None and Loader(Formatted()).steps is None
    assert Loader(BatchInSchema()).steps is None  # a list of nested subjects
    _same(Hooked(), {" n ": 1})
    _same(Formatted(), {"day": "02/01/2026"})
    batch = {"title": "t", "rule_code": "A", "occurred_on": "2026-01-02", "subjects": []}
    _same(BatchInSchema(), batch)
    _same(BatchInSchema(), {**batch, "subjects": [{"household_id": 1}]})
    _same(ReviewInSchema(), {})
    _same(ReviewInSchema(), {"note": None})
