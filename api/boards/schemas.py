"""Schemas of 红黑榜 boards, their entries and appeals."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import MONTH, In


class DraftInSchema(In):
    month = f.String(required=True, validate=MONTH)


class NominationInSchema(In):
    household_id = f.Integer(required=True, strict=True)
    resident_id = f.Integer(allow_none=True, strict=True)
    text = f.String(required=True, validate=v.Length(1, 500))


class ReasonInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 500))


class AppealInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 2000))


class AppealResolveInSchema(In):
    uphold = f.Boolean(required=True)
    resolution = f.String(required=True, validate=v.Length(1, 1000))


class AppealQuerySchema(In):
    status = f.String(validate=v.OneOf(["open", "upheld", "dismissed"]))


class PosterQuerySchema(In):
    size = f.String(load_default="a4", validate=v.OneOf(["a4", "a3"]))


class BoardEntrySchema(ma.Schema):
    id = f.Integer(required=True)
    kind = f.String(required=True, metadata={"description": "red 红榜 | black 黑榜"})
    section = f.String(
        required=True, metadata={"description": "top|deed|nomination|party|violation"}
    )
    rank = f.Integer(allow_none=True)
    who = f.String(required=True, metadata={"description": "as published, per privacy mode"})
    group = f.String(required=True)
    score = f.Integer(allow_none=True)
    stars = f.Integer(allow_none=True)
    text = f.String(required=True)
    month = f.String(allow_none=True, metadata={"description": "month a violation was posted"})
    category = f.String(
        allow_none=True,
        metadata={"description": "a deed's or violation's rule category, frozen at drafting"},
    )


class StaffEntrySchema(BoardEntrySchema):
    source = f.String(required=True)
    name = f.String(required=True, metadata={"description": "real name and household number"})
    household_id = f.Integer(required=True)
    removed = f.Boolean(required=True)
    removed_reason = f.String(allow_none=True)


class BoardSummarySchema(ma.Schema):
    id = f.Integer(required=True)
    month = f.String(required=True)
    status = f.String(required=True)
    published_at = f.DateTime(allow_none=True)
    withdrawn_at = f.DateTime(allow_none=True)
    head_seq = f.Integer(allow_none=True)
    head_hash = f.String(allow_none=True)
    correction_of = f.Integer(allow_none=True)
    corrected_by = f.Integer(allow_none=True)


class PublicBoardSchema(BoardSummarySchema):
    withdraw_reason = f.String(allow_none=True)
    privacy_mode = f.String(allow_none=True)
    tie_rule = f.String(required=True)
    correction = f.Dict(allow_none=True)
    categories = f.List(
        f.String(),
        required=True,
        metadata={"description": "the order of the category groups (catalog order, frozen)"},
    )
    entries = f.List(f.Nested(BoardEntrySchema), required=True)


class BoardSchema(PublicBoardSchema):
    entries = f.List(f.Nested(StaffEntrySchema), required=True)


class AppealSchema(ma.Schema):
    id = f.Integer(required=True)
    board_id = f.Integer(required=True)
    board_entry_id = f.Integer(required=True)
    status = f.String(required=True)
    reason = f.String(required=True)
    resolution = f.String(allow_none=True)
    created_at = f.DateTime(required=True)
    resolved_at = f.DateTime(allow_none=True)
    correction_board_id = f.Integer(allow_none=True)


class PartyQuerySchema(In):
    period = f.String(validate=v.Regexp(r"^\d{4}(-(Q[1-4]|\d{2}))?$"))


class PartyStandingSchema(ma.Schema):
    resident_id = f.Integer(required=True)
    household_id = f.Integer(required=True)
    name = f.String(required=True)
    branch = f.String(allow_none=True)
    period = f.String(required=True)
    score = f.Integer(required=True, metadata={"description": "the period's score"})
    stars = f.Integer(required=True, metadata={"description": "0–5; 0 under a 一票否决"})
    vetoed = f.String(allow_none=True, metadata={"description": "the 一票否决 that bars honours"})


class PartyEntrySchema(ma.Schema):
    id = f.Integer(required=True)
    kind = f.String(required=True)
    period_key = f.String(allow_none=True)
    amount = f.Integer(required=True)
    score_delta = f.Integer(required=True)
    category = f.String(allow_none=True)
    memo = f.String(required=True)
    reversed_by = f.Integer(allow_none=True)
    created_at = f.DateTime(required=True)


class PartyMemberSchema(PartyStandingSchema):
    entries = f.List(f.Nested(PartyEntrySchema), required=True)
