"""Schemas of claims, notices, objections and the anomaly report."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import MONTH, In


class ClaimInSchema(In):
    scheme = f.String(load_default="household", validate=v.Length(1, 32))
    household_id = f.Integer(required=True, strict=True)
    resident_id = f.Integer(allow_none=True, strict=True)
    rule_code = f.String(required=True, validate=v.Length(1, 16))
    quantity = f.Integer(load_default=1, strict=True, validate=v.Range(1, 1000))
    proposed_points = f.Integer(allow_none=True, strict=True, validate=v.Range(1, 100000))
    description = f.String(load_default="", validate=v.Length(0, 1000))
    occurred_on = f.Date(required=True)
    expected_rule_id = f.Integer(
        strict=True,
        metadata={
            "description": "the catalog rule (one version's item) the recorder saw; if given, "
            "a different rule in force for occurred_on is refused (409 rule_changed)"
        },
    )
    expected_group_id = f.Integer(
        strict=True,
        metadata={
            "description": "the household's grid when recorded (with expected_rule_id); a "
            "household moved since is refused (409 household_moved), one gone 409 household_gone"
        },
    )

    @ma.validates_schema
    def _rule_with_group(self, data, **kwargs):
        if "expected_group_id" in data and "expected_rule_id" not in data:
            raise ma.ValidationError("请同时提供 expected_rule_id", "expected_rule_id")


class SubjectInSchema(In):
    household_id = f.Integer(required=True, strict=True)
    resident_id = f.Integer(allow_none=True, strict=True)


class BatchInSchema(In):
    scheme = f.String(load_default="household", validate=v.Length(1, 32))
    title = f.String(required=True, validate=v.Length(1, 200))
    rule_code = f.String(required=True, validate=v.Length(1, 16))
    occurred_on = f.Date(required=True)
    quantity = f.Integer(load_default=1, strict=True, validate=v.Range(1, 1000))
    proposed_points = f.Integer(allow_none=True, strict=True, validate=v.Range(1, 100000))
    description = f.String(load_default="", validate=v.Length(0, 1000))
    subjects = f.List(f.Nested(SubjectInSchema), required=True, validate=v.Length(1, 500))


class GroupAwardInSchema(In):
    scheme = f.String(load_default="household", validate=v.Length(1, 32))
    title = f.String(
        required=True,
        validate=v.Length(1, 200),
        metadata={"description": "shown on the notice, e.g. 三组（卫生示范组）"},
    )
    rule_code = f.String(required=True, validate=v.Length(1, 16))
    occurred_on = f.Date(required=True)
    description = f.String(load_default="", validate=v.Length(0, 1000))
    group_id = f.Integer(metadata={"description": "every active household of this 小组"})
    household_ids = f.List(
        f.Integer(),
        validate=v.Length(1, 500),
        metadata={"description": "or these households (an event's participants)"},
    )

    @ma.validates_schema
    def _one_of(self, data, **kwargs):
        if ("group_id" in data) == ("household_ids" in data):
            raise ma.ValidationError("请指定小组或农户名单（二选一）", "group_id")


class DeclarationFormSchema(In):
    scheme = f.String(load_default="household", validate=v.Length(1, 32))
    rule_code = f.String(required=True, validate=v.Length(1, 16))
    resident_id = f.Integer(allow_none=True)
    quantity = f.Integer(load_default=1, validate=v.Range(1, 1000))
    proposed_points = f.Integer(allow_none=True, validate=v.Range(1, 100000))
    description = f.String(load_default="", validate=v.Length(0, 1000))
    occurred_on = f.Date(required=True)


class DeclarationFilesSchema(ma.Schema):
    photos = f.List(f.Raw(metadata={"type": "string", "format": "binary"}))


class ReviewInSchema(In):
    note = f.String(load_default=None, allow_none=True, validate=v.Length(0, 1000))


class RejectInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 1000))


class ObjectionInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 2000))


class ResolveInSchema(In):
    uphold = f.Boolean(required=True)
    note = f.String(required=True, validate=v.Length(1, 1000))


class ReverseInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 500))


class ClaimQuerySchema(In):
    status = f.String(validate=v.OneOf(["pending_review", "in_notice", "posted", "rejected"]))
    limit = f.Integer(load_default=100, validate=v.Range(1, 500))
    offset = f.Integer(load_default=0, validate=v.Range(0, 10_000_000))


class ObjectionSchema(ma.Schema):
    id = f.Integer(required=True)
    claim_id = f.Integer(required=True)
    reason = f.String(required=True)
    status = f.String(required=True)
    resolution_note = f.String(allow_none=True)
    created_at = f.DateTime(required=True)
    resolved_at = f.DateTime(allow_none=True)


class EvidenceSchema(ma.Schema):
    id = f.Integer(required=True)
    content_type = f.String(required=True)
    size = f.Integer(required=True)


class ClaimSchema(ma.Schema):
    id = f.Integer(required=True)
    scheme_id = f.Integer(required=True)
    household_id = f.Integer(required=True)
    resident_id = f.Integer(allow_none=True)
    rule_id = f.Integer(required=True)
    batch_id = f.Integer(allow_none=True)
    channel = f.String(required=True)
    quantity = f.Integer(required=True)
    requested = f.Integer(required=True)
    points = f.Integer(required=True)
    cut_note = f.String(allow_none=True)
    rule_note = f.String(
        allow_none=True,
        metadata={"description": "why the points differ: repeat, campaign, automatic condition"},
    )
    description = f.String(required=True)
    occurred_on = f.Date(required=True)
    status = f.String(required=True)
    recorded_by = f.Integer(allow_none=True, metadata={"description": "none: the scheduler"})
    reviewed_by = f.Integer(allow_none=True)
    review_note = f.String(allow_none=True)
    notice_until = f.DateTime(allow_none=True)
    entry_id = f.Integer(allow_none=True)
    posted_at = f.DateTime(allow_none=True)
    created_at = f.DateTime(required=True)
    evidence = f.List(f.Nested(EvidenceSchema), required=True)
    objections = f.List(f.Nested(ObjectionSchema), required=True)


class BatchResultSchema(ma.Schema):
    batch_id = f.Integer(required=True)
    claims = f.List(f.Nested(ClaimSchema), required=True)


class PostResultSchema(ma.Schema):
    posted = f.List(f.Integer(), required=True)


class NoticeSchema(ma.Schema):
    kind = f.String(required=True, metadata={"description": "notice 公示 | reversal 冲正"})
    id = f.Integer(required=True)
    who = f.String(required=True, metadata={"description": "shown per the privacy mode"})
    group = f.String(required=True)
    item = f.String(required=True)
    category = f.String(required=True)
    points = f.Integer(required=True)
    occurred_on = f.Date(allow_none=True)
    until = f.DateTime(allow_none=True)
    reason = f.String(allow_none=True)
    note = f.String(allow_none=True, metadata={"description": "repeat, campaign or condition"})


class AnomalySchema(ma.Schema):
    month = f.String(required=True)
    recorders = f.List(f.Dict(), required=True)
    concentration = f.List(f.Dict(), required=True)
    pairs = f.List(f.Dict(), required=True)
    bursts = f.List(f.Dict(), required=True)


class MonthArgsSchema(In):
    month = f.String(validate=MONTH)
