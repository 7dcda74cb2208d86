"""Schemas of events, check-ins and closing."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import In
from points.models.events import Audience
from points.periods import LOCAL_TZ


class EventInSchema(In):
    scheme = f.String(
        load_default="household",
        validate=v.Length(1, 32),
        metadata={
            "description": "household (once per household) or party (party members only, "
            "once per person, each earning party points)"
        },
    )
    title = f.String(required=True, validate=v.Length(1, 200))
    place = f.String(required=True, validate=v.Length(1, 200))
    starts_at = f.AwareDateTime(
        required=True,
        default_timezone=LOCAL_TZ,
        metadata={"description": "check-in opens; without an offset, Beijing time"},
    )
    ends_at = f.AwareDateTime(required=True, default_timezone=LOCAL_TZ)
    rule_code = f.String(required=True, validate=v.Length(1, 16))
    audience = f.String(load_default=Audience.VILLAGE, validate=v.OneOf(list(Audience)))
    group_ids = f.List(f.Integer(strict=True), load_default=list, validate=v.Length(0, 100))


class EventSchema(ma.Schema):
    id = f.Integer(required=True)
    title = f.String(required=True)
    place = f.String(required=True)
    held_on = f.Date(required=True)
    starts_at = f.DateTime(required=True)
    ends_at = f.DateTime(required=True)
    rule_code = f.String(required=True)
    scheme = f.String(attribute="scheme_code", metadata={"description": "household | party"})
    per_person = f.Boolean(metadata={"description": "attendance once per person (party)"})
    audience = f.String(required=True)
    state = f.String(required=True, metadata={"description": "open | closed"})
    batch_id = f.Integer(allow_none=True, metadata={"description": "the group claim, once closed"})
    qr_url = f.String(metadata={"description": "what the event's QR encodes (staff only)"})


class CheckinInSchema(In):
    code = f.String(
        validate=v.Length(1, 1000),
        metadata={
            "description": "a household card (PTSCARD:… or the serial) or phone code (PTS1:…)"
        },
    )
    resident_id = f.Integer(strict=True, metadata={"description": "or a walk-in found by name"})

    @ma.validates_schema
    def _one_of(self, data, **kwargs):
        if ("code" in data) == ("resident_id" in data):
            raise ma.ValidationError("请提供扫码内容或村民（二选一）", "code")


class SelfCheckinInSchema(In):
    code = f.String(
        required=True,
        validate=v.Length(1, 1000),
        metadata={"description": "the event QR's text (its URL) or its token"},
    )


class AttendanceSchema(ma.Schema):
    id = f.Integer(required=True)
    event_id = f.Integer(required=True)
    household_id = f.Integer(required=True)
    resident_id = f.Integer(allow_none=True)
    per_person = f.Boolean(metadata={"description": "a party member's own attendance"})
    method = f.String(required=True, metadata={"description": "self | card | phone | name"})
    checked_in_at = f.DateTime(required=True)


class AttendeeSchema(ma.Schema):
    household_id = f.Integer(required=True, attribute="attendance.household_id")
    household_number = f.String(required=True)
    resident_id = f.Integer(allow_none=True, attribute="attendance.resident_id")
    name = f.String(allow_none=True)
    method = f.String(required=True, attribute="attendance.method")
    checked_in_at = f.DateTime(required=True, attribute="attendance.checked_in_at")


class CloseResultSchema(ma.Schema):
    event = f.Nested(EventSchema, required=True)
    batch_id = f.Integer(allow_none=True)
    claims = f.List(f.Integer(), required=True, metadata={"description": "the claims' ids"})
