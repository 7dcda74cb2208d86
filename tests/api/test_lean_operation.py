"""The record and batch endpoints run without flask-smorest's and webargs' wrappers (issue 18,
fourth pass): what a client sees is what the decorated views answered. Answers are dumped by a
planned `Dumper`, equal to marshmallow's dump; bodies are parsed with webargs' rules and
errors (the error envelope, its stable codes and Chinese messages)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import flask
import marshmallow as ma
import pytest
from flask.json.provider import DefaultJSONProvider
from sqlalchemy import select

from api.claims.schemas import BatchResultSchema, ClaimSchema
from api.lean import Dumper, json_response
from points.db import utcnow
from points.models.claims import Claim
from tests.api.conftest import auth, jpeg


def test_answers_dump_as_marshmallow_dumps_them(app, client, world):
    a = f"/api/v1/villages/{world.a.code}"
    today = utcnow().date().isoformat()
    # With photos (evidence), pending review (no notice), then objected to and resolved.
    body = {
        "household_id": world.home1.id,
        "rule_code": "SHAN-01",
        "proposed_points": 20,
        "description": "扑灭邻居家火情",
        "occurred_on": today,
    }
    with_photo = client.post(
        f"{a}/claims",
        headers=auth(world.tokens["admin"]),
        data={"data": json.dumps(body), "photos": (io.BytesIO(jpeg()), "p.jpg")},
        content_type="multipart/form-data",
    )
    assert with_photo.status_code == 201, with_photo.json
    assert len(with_photo.json["evidence"]) == 1 and with_photo.json["notice_until"] is None
    plain = {
        "household_id": world.home1.id,
        "rule_code": "FZ-51",
        "description": "参与赌博",
        "occurred_on": today,
    }
    objected = client.post(f"{a}/claims", json=plain, headers=auth(world.tokens["admin"]))
    assert objected.status_code == 201, objected.json
    objected = objected.json
    client.post(
        f"{a}/claims/{objected['id']}/approve",
        json={"note": "属实"},
        headers=auth(world.tokens["reviewer"]),
    )
    raised = client.post(
        f"{a}/claims/{objected['id']}/objections",
        json={"reason": "不是我家"},
        headers=auth(world.tokens["resident"]),
    )
    assert raised.status_code == 201, raised.json
    batch = client.post(
        f"{a}/claims/batch",
        json={
            "title": "清扫村道",
            "rule_code": "MEI-01",
            "occurred_on": today,
            "subjects": [{"household_id": world.home2.id}],
        },
        headers=auth(world.tokens["admin"]),
    )
    assert batch.status_code == 201, batch.json
    schema, dumper = ClaimSchema(), Dumper(ClaimSchema())
    with app.extensions["points.sessionmaker"]() as s:
        claims = s.execute(select(Claim).order_by(Claim.id)).scalars().all()
        assert len(claims) >= 3
        assert any(c.evidence for c in claims) and any(c.objections for c in claims)
        for claim in claims:
            assert dumper(claim) == schema.dump(claim)
        # Attributes not in __dict__ (expired: read again from the database) are read by
        # getattr, as marshmallow reads them.
        s.expire(claims[0], ["points", "status", "evidence"])
        assert "points" not in claims[0].__dict__
        assert dumper(claims[0]) == schema.dump(claims[0])
        assert dumper(claims, many=True) == schema.dump(claims, many=True)
        result = {"batch_id": 7, "claims": claims}
        assert Dumper(BatchResultSchema())(result) == BatchResultSchema().dump(result)
    # The answers were those dumps (as JSON).
    shown = client.get(f"{a}/claims/{with_photo.json['id']}", headers=auth(world.tokens["admin"]))
    assert with_photo.json == shown.json


class _Inner(ma.Schema):
    n = ma.fields.Integer()
    when = ma.fields.Date()


class _Odd(ma.Schema):
    renamed = ma.fields.Integer(data_key="shown")
    sourced = ma.fields.String(attribute="other")
    defaulted = ma.fields.String(dump_default="默认")
    absent = ma.fields.Integer()
    dotted = ma.fields.Integer(attribute="inner.n")
    as_text = ma.fields.Integer(as_string=True)
    flag = ma.fields.Boolean()
    inner = ma.fields.Nested(_Inner)
    inners = ma.fields.List(ma.fields.Nested(_Inner), allow_none=True)
    many_inner = ma.fields.Nested(_Inner, many=True)
    text = ma.fields.String()
    constant = ma.fields.Constant("c")
    stamp = ma.fields.DateTime()
    day_text = ma.fields.Date(format="%d/%m/%Y")
    aware = ma.fields.AwareDateTime()


class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.mark.parametrize("as_dict", [False, True])
def test_the_dumper_follows_marshmallow_on_every_kind_of_field(as_dict):
    inner = {"n": 3, "when": date(2026, 1, 2)}
    values = {
        "renamed": 1,
        "other": "x",
        "inner": _Obj(**inner) if not as_dict else inner,
        "as_text": 5,
        "flag": 1,
        "inners": None,
        "many_inner": [inner, inner],
        "text": b"\xe5\xad\x97",
        "stamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day_text": date(2026, 1, 2),
        "aware": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    obj = values if as_dict else _Obj(**values)
    assert Dumper(_Odd())(obj) == _Odd().dump(obj)
    with_list = {**values, "inners": [inner], "text": None, "inner": None, "stamp": None}
    obj = with_list if as_dict else _Obj(**with_list)
    assert Dumper(_Odd())(obj) == _Odd().dump(obj)


class _Shadowed:
    """An attribute the class computes (a property) while __dict__ holds another value under
    the same name, and an attribute __dict__ does not hold at all."""

    def __init__(self):
        self.__dict__.update(n=1, text="stored")

    @property
    def text(self):
        return "computed"

    when = date(2026, 1, 2)


class _Slotted:
    __slots__ = ("n", "text")

    def __init__(self):
        self.n, self.text = 2, "slot"


class _Plain(ma.Schema):
    n = ma.fields.Integer()
    text = ma.fields.String()
    when = ma.fields.Date()


@pytest.mark.parametrize("obj", [_Shadowed(), _Slotted(), _Obj(n=3, text="x")])
def test_the_dumper_reads_attributes_as_getattr_does(obj):
    assert Dumper(_Plain())(obj) == _Plain().dump(obj)
    assert Dumper(_Plain())(obj)["text"] == obj.text


def test_a_schema_with_dump_hooks_is_refused():
    class Hooked(ma.Schema):
        n = ma.fields.Integer()

        @ma.post_dump
        def _wrap(self, data, **kw):
            return {"data": data}

    with pytest.raises(TypeError):
        Dumper(Hooked())


@pytest.mark.parametrize("path", ["claims", "claims/batch"])
def test_bad_bodies_get_the_envelope_as_before(client, world, path):
    url = f"/api/v1/villages/{world.a.code}/{path}"
    headers = auth(world.tokens["admin"])
    unknown = client.post(url, json={"nope": 1}, headers=headers)
    assert unknown.status_code == 422 and unknown.json["error"] == "invalid_input"
    assert unknown.json["message"] == "输入有误，请检查标出的字段"
    assert unknown.json["errors"]["nope"] == ["不允许的字段"]
    assert unknown.json["errors"]["rule_code"] == ["必填"]
    broken = client.post(url, data="{", content_type="application/json", headers=headers)
    assert broken.status_code == 400 and broken.json["error"] == "bad_request"
    assert broken.json["message"] == "请求格式不正确"
    listed = client.post(url, json=[1], headers=headers)
    assert listed.status_code == 422 and listed.json["errors"] == {"_schema": ["类型不正确"]}
    empty = client.post(url, headers=headers)
    assert empty.status_code == 422 and empty.json["errors"]["rule_code"] == ["必填"]
    bad_data = client.post(
        url, data={"data": "{"}, content_type="multipart/form-data", headers=headers
    )
    assert bad_data.status_code == 422 and bad_data.json["errors"] == {"data": ["不是正确的 JSON"]}
    signed_out = client.post(url, json={"nope": 1})
    # As before: the body is checked first (webargs ran before the view), then who asks.
    assert signed_out.status_code == 422
    huge = client.post(
        url,
        json={"household_id": 2**40, "rule_code": "MEI-01", "occurred_on": "2026-11-20"},
        headers=headers,
    )
    assert huge.status_code == 422


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("compact", [None, True, False])
@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("sort_keys", [True, False])
def test_the_answer_is_what_flasks_json_response_makes(debug, compact, ensure_ascii, sort_keys):
    app = flask.Flask(__name__)
    app.debug = debug
    app.json.compact, app.json.ensure_ascii, app.json.sort_keys = compact, ensure_ascii, sort_keys
    value = {"z": "扑灭火情", "a": [1, None, {"day": date(2026, 1, 2)}], "t": True, "n": 1.5}
    with app.app_context():
        expected = app.json.response(value)
        expected.status_code = 201
        made = json_response(value, 201)
    assert made.get_data() == expected.get_data()
    assert made.status == expected.status and list(made.headers) == list(expected.headers)


def test_another_json_provider_makes_its_own_answer():
    class Upper(DefaultJSONProvider):
        def response(self, *args, **kwargs):
            return self._app.response_class("UP", mimetype="text/plain")

    app = flask.Flask(__name__)
    app.json = Upper(app)
    with app.app_context():
        made = json_response({"a": 1}, 201)
    assert made.get_data() == b"UP" and made.status_code == 201
