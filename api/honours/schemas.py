"""Schemas of honour lists, their entries and appeals, 民主评议 and the town's counts."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import In

YEAR = v.Range(2000, 9999, error="年份应在 2000–9999 之间")
KINDS = ["household_stars", "party_stars", "awards", "models"]


class HonourYearQuerySchema(In):
    year = f.Integer(validate=YEAR)


class HonourDraftInSchema(In):
    kind = f.String(required=True, validate=v.OneOf(KINDS))
    year = f.Integer(
        strict=True, validate=YEAR, metadata={"description": "required without period"}
    )
    period = f.String(
        validate=v.Length(1, 16),
        metadata={
            "description": "a closed scoring period ('2025-Q3') of the household scheme: "
            "星级文明户 when the scheme designates per period"
        },
    )


class HonourNominationInSchema(In):
    household_id = f.Integer(required=True, strict=True)
    resident_id = f.Integer(allow_none=True, strict=True)
    title = f.String(required=True, validate=v.Length(1, 16))
    text = f.String(required=True, validate=v.Length(1, 500))
    consent_note = f.String(allow_none=True, validate=v.Length(max=500))


class HonourReasonInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 2000))


class HonourResolveInSchema(In):
    uphold = f.Boolean(required=True)
    resolution = f.String(required=True, validate=v.Length(1, 1000))
    stars = f.Integer(allow_none=True, strict=True, validate=v.Range(0, 5))


class PartyReviewInSchema(In):
    resident_id = f.Integer(required=True, strict=True)
    year = f.Integer(required=True, strict=True, validate=YEAR)
    score = f.Integer(allow_none=True, strict=True, validate=v.Range(0, 100))
    grade = f.String(allow_none=True, validate=v.OneOf(["优秀", "合格", "基本合格", "不合格"]))


class HonourEntrySchema(ma.Schema):
    id = f.Integer(required=True)
    title = f.String(
        required=True, metadata={"description": "stars | 优秀群众 | 优秀党员 | 最美家庭 | 道德模范"}
    )
    who = f.String(required=True, metadata={"description": "as published, per privacy mode"})
    group = f.String(required=True)
    stars = f.Integer(allow_none=True)
    score = f.Integer(allow_none=True)
    review_score = f.Integer(allow_none=True)
    text = f.String(required=True)


class HonourStaffEntrySchema(HonourEntrySchema):
    source = f.String(required=True)
    name = f.String(required=True, metadata={"description": "real name and household number"})
    household_id = f.Integer(required=True)
    consent_note = f.String(allow_none=True)
    removed = f.Boolean(required=True)
    removed_reason = f.String(allow_none=True)


class HonourListSummarySchema(ma.Schema):
    id = f.Integer(required=True)
    kind = f.String(required=True)
    year = f.Integer(required=True)
    period = f.String(required=True, metadata={"description": "'' for a yearly list"})
    status = f.String(required=True)
    published_at = f.DateTime(allow_none=True)
    correction_of = f.Integer(allow_none=True)
    corrected_by = f.Integer(allow_none=True)


class PublicHonourListSchema(HonourListSummarySchema):
    kind_text = f.String(required=True)
    withdraw_reason = f.String(allow_none=True)
    head_seq = f.Integer(allow_none=True)
    head_hash = f.String(allow_none=True)
    privacy_mode = f.String(allow_none=True)
    rule = f.String(allow_none=True, metadata={"description": "the party stars' combining rule"})
    correction = f.Dict(allow_none=True)
    entries = f.List(f.Nested(HonourEntrySchema), required=True)


class HonourListSchema(PublicHonourListSchema):
    entries = f.List(f.Nested(HonourStaffEntrySchema), required=True)


class HouseholdHonourSchema(HonourEntrySchema):
    year = f.Integer(required=True)
    period = f.String(required=True)
    when = f.String(required=True, metadata={"description": "'2025年度' or '2025年第三季度'"})
    kind = f.String(required=True)
    list_id = f.Integer(required=True)
    label = f.String(required=True)


class HonourAppealSchema(ma.Schema):
    id = f.Integer(required=True)
    list_id = f.Integer(required=True)
    entry_id = f.Integer(required=True)
    reason = f.String(required=True)
    status = f.String(required=True)
    resolution = f.String(allow_none=True)
    resolved_at = f.DateTime(allow_none=True)
    correction_list_id = f.Integer(allow_none=True)
    created_at = f.DateTime(required=True)


class PartyReviewSchema(ma.Schema):
    resident_id = f.Integer(required=True)
    year = f.Integer(required=True)
    score = f.Integer(allow_none=True)
    grade = f.String(allow_none=True)
    recorded_at = f.DateTime(required=True)


class TownHonoursSchema(ma.Schema):
    code = f.String(required=True)
    name = f.String(required=True)
    stars = f.List(f.Integer(), required=True, metadata={"description": "households by stars 0–5"})
    party_stars = f.List(f.Integer(), required=True)
    titles = f.Dict(keys=f.String(), values=f.Integer(), required=True)
