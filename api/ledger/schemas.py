"""Schemas of ledger reads: schemes, balances, statements, the chain head, town summaries."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import MONTH, PERIOD, In


class SchemeSchema(ma.Schema):
    id = f.Integer(required=True)
    code = f.String(required=True)
    name = f.String(required=True)
    subject_kind = f.String(required=True)
    period_kind = f.String(required=True)
    close_policy = f.String(required=True)
    base_score = f.Integer(required=True)
    redemption_threshold = f.Integer(required=True)
    notice_days = f.Integer(required=True)
    redeemable = f.Boolean(required=True)


class LotSchema(ma.Schema):
    period = f.String(required=True)
    balance = f.Integer(required=True)


class BalanceSchema(ma.Schema):
    scheme = f.String(required=True)
    period = f.String(required=True)
    available = f.Integer(required=True)
    owed = f.Integer(required=True)
    score = f.Integer(required=True)
    lots = f.List(f.Nested(LotSchema), required=True)


class EntrySchema(ma.Schema):
    id = f.Integer(required=True)
    seq = f.Integer(required=True)
    kind = f.String(required=True)
    scheme_id = f.Integer(allow_none=True)
    period_key = f.String(allow_none=True)
    month = f.String(allow_none=True)
    amount = f.Integer(required=True, metadata={"description": "change to the subject's points"})
    score_delta = f.Integer(required=True)
    category = f.String(allow_none=True)
    memo = f.String(required=True)
    reverses_id = f.Integer(allow_none=True)
    reversed_by = f.Integer(allow_none=True)
    created_at = f.DateTime(required=True)
    hash = f.String(required=True)


class StatementSchema(ma.Schema):
    household_id = f.Integer(allow_none=True)
    resident_id = f.Integer(allow_none=True)
    scheme = f.String(required=True)
    balance = f.Nested(BalanceSchema, required=True)
    entries = f.List(f.Nested(EntrySchema), required=True)
    head_seq = f.Integer(required=True)
    head_hash = f.String(required=True)


class StatementQuerySchema(In):
    scheme = f.String(load_default="household", validate=v.Length(1, 32))
    period = f.String(validate=PERIOD)
    limit = f.Integer(load_default=200, validate=v.Range(1, 1000))


class HeadSchema(ma.Schema):
    seq = f.Integer(required=True)
    hash = f.String(required=True)


class TownVillageSchema(ma.Schema):
    code = f.String(required=True)
    name = f.String(required=True)
    households = f.Integer(required=True)
    active_households = f.Integer(required=True)
    participation_rate = f.Float(required=True)
    awarded = f.Integer(required=True)
    deducted = f.Integer(required=True)
    redeemed = f.Integer(required=True)


class TownSummarySchema(ma.Schema):
    town = f.String(required=True)
    month = f.String(required=True)
    villages = f.List(f.Nested(TownVillageSchema), required=True)


class MonthQuerySchema(In):
    month = f.String(validate=MONTH)
