"""Schemas of sign-in: token requests and the signed-in user."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import In


class TokenRequestSchema(In):
    username = f.String(validate=v.Length(1, 64))
    password = f.String(validate=v.Length(1, 200), load_only=True)
    phone = f.String(validate=v.Regexp(r"^1\d{10}$"))
    pin = f.String(validate=v.Regexp(r"^\d{6}$"), load_only=True)
    name = f.String(validate=v.Length(0, 100), load_default="")

    @ma.validates_schema
    def _one_way(self, data, **_kw):
        staff = "username" in data and "password" in data
        resident = "phone" in data and "pin" in data
        if staff == resident:
            raise ma.ValidationError("请填写用户名和密码，或手机号和 PIN 码（二选一）", "_schema")


class TokenSchema(ma.Schema):
    token = f.String(required=True)
    expires_at = f.DateTime(required=True)
    user_id = f.Integer(required=True)


class GrantSchema(ma.Schema):
    role = f.String(required=True)
    village_id = f.Integer(allow_none=True)
    group_id = f.Integer(allow_none=True)
    town = f.String(allow_none=True)


class MeSchema(ma.Schema):
    user_id = f.Integer(required=True)
    name = f.String(required=True)
    grants = f.List(f.Nested(GrantSchema), required=True)
    household_id = f.Integer(allow_none=True)
    resident_id = f.Integer(allow_none=True)
