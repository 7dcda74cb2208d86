"""Schemas of villages, groups, households, residents, staff users, the roster and the audit log."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import In
from points.models.org import PrivacyMode, Role
from points.org import mask_phone


class VillageSchema(ma.Schema):
    id = f.Integer(required=True)
    code = f.String(required=True)
    name = f.String(required=True)
    town = f.String(required=True)
    county = f.String(required=True)
    privacy_mode = f.String(required=True)


class VillageUpdateSchema(In):
    name = f.String(validate=v.Length(1, 100))
    privacy_mode = f.String(validate=v.OneOf([m.value for m in PrivacyMode]))


class GroupSchema(ma.Schema):
    id = f.Integer(required=True)
    name = f.String(required=True)


class GroupInSchema(In):
    name = f.String(required=True, validate=v.Length(1, 100))


class ResidentSchema(ma.Schema):
    id = f.Integer(required=True)
    household_id = f.Integer(required=True)
    name = f.String(required=True)
    phone = f.Function(lambda r: mask_phone(r.phone), allow_none=True)
    is_party_member = f.Boolean(required=True)
    party_branch = f.String(allow_none=True)


class ResidentInSchema(In):
    name = f.String(required=True, validate=v.Length(1, 50))
    phone = f.String(validate=v.Regexp(r"^1\d{10}$"), allow_none=True)
    is_party_member = f.Boolean(load_default=False)
    party_branch = f.String(validate=v.Length(0, 100), allow_none=True)
    is_head = f.Boolean(load_default=False)


class HouseholdSchema(ma.Schema):
    id = f.Integer(required=True)
    number = f.String(required=True)
    door_plate = f.String(allow_none=True)
    group_id = f.Integer(required=True)
    head_id = f.Integer(allow_none=True)
    active = f.Boolean(required=True)
    members = f.List(f.Nested(ResidentSchema), required=True)


class HouseholdInSchema(In):
    number = f.String(required=True, validate=v.Length(1, 32))
    group_id = f.Integer(required=True, strict=True)
    door_plate = f.String(validate=v.Length(0, 100), allow_none=True)


class HouseholdPageSchema(ma.Schema):
    total = f.Integer(required=True)
    items = f.List(f.Nested(HouseholdSchema), required=True)


class HouseholdQuerySchema(In):
    q = f.String(validate=v.Length(0, 50))
    group_id = f.Integer()
    limit = f.Integer(load_default=100, validate=v.Range(1, 500))
    offset = f.Integer(load_default=0, validate=v.Range(0, 10_000_000))


class PinInSchema(In):
    pin = f.String(required=True, validate=v.Regexp(r"^\d{6}$"), load_only=True)


class UserSchema(ma.Schema):
    id = f.Integer(required=True)
    username = f.String(allow_none=True)
    display_name = f.String(required=True)
    phone = f.Function(lambda u: mask_phone(u.phone), allow_none=True)
    resident_id = f.Integer(allow_none=True)
    active = f.Boolean(required=True)
    locked_until = f.DateTime(
        allow_none=True, metadata={"description": "sign-in refused until then (too many tries)"}
    )
    roles = f.Function(
        lambda u: [
            {"role": r.role, "village_id": r.village_id, "group_id": r.group_id, "town": r.town}
            for r in u.roles
        ]
    )


class UserInSchema(In):
    username = f.String(required=True, validate=v.Regexp(r"^[A-Za-z0-9_.-]{3,64}$"))
    display_name = f.String(required=True, validate=v.Length(1, 50))
    password = f.String(required=True, validate=v.Length(8, 200), load_only=True)
    role = f.String(
        required=True, validate=v.OneOf([Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK])
    )
    group_id = f.Integer(allow_none=True)
    resident_id = f.Integer(allow_none=True)


class RosterProblemSchema(ma.Schema):
    row = f.Integer(required=True)
    column = f.String(required=True)
    message = f.String(required=True)


class RosterResultSchema(ma.Schema):
    households = f.Integer(required=True)
    residents = f.Integer(required=True)
    groups_created = f.Integer(required=True)
    opening_entries = f.Integer(required=True)


class AuditEventSchema(ma.Schema):
    id = f.Integer(required=True)
    actor_id = f.Integer(allow_none=True)
    action = f.String(required=True)
    object_type = f.String(required=True)
    object_id = f.String(allow_none=True)
    summary = f.String(required=True)
    remote_addr = f.String(allow_none=True)
    created_at = f.DateTime(required=True)


class AuditQuerySchema(In):
    action = f.String(validate=v.Length(1, 64))
    before_id = f.Integer()
    limit = f.Integer(load_default=200, validate=v.Range(1, 1000))
