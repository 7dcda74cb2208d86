"""marshmallow schemas of the points shop: input schemas reject unknown fields; every name a
counter or a resident sees is masked."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.rest import In
from points.models.shop import MovementKind, OrderState, StoreKind
from points.shop import MAX_ID, MAX_PRICE, MAX_QUANTITY
from points.shop.credentials import format_serial
from points.shop.redemption import household_view

ID = v.Range(1, MAX_ID)


QUANTITY = v.Range(1, 999)


# --- stores and goods ------------------------------------------------------------------------


class StoreSchema(ma.Schema):
    id = f.Integer(required=True)
    name = f.String(required=True)
    kind = f.String(
        required=True, metadata={"description": "village 村积分超市 | private 定点商店"}
    )
    address = f.String(required=True)
    active = f.Boolean(required=True)
    scheme_id = f.Integer(required=True)
    created_at = f.DateTime(required=True)


class StoreInSchema(In):
    name = f.String(required=True, validate=v.Length(1, 100))
    kind = f.String(load_default=StoreKind.VILLAGE, validate=v.OneOf([k.value for k in StoreKind]))
    address = f.String(load_default="", validate=v.Length(0, 200))


class StoreUpdateSchema(In):
    name = f.String(validate=v.Length(1, 100))
    kind = f.String(validate=v.OneOf([k.value for k in StoreKind]))
    address = f.String(validate=v.Length(0, 200))
    active = f.Boolean()


class GoodSchema(ma.Schema):
    id = f.Integer(required=True)
    store_id = f.Integer(required=True)
    name = f.String(required=True)
    unit = f.String(required=True)
    price = f.Integer(required=True, metadata={"description": "points per unit"})
    stock = f.Integer(required=True)
    limit_per_period = f.Integer(allow_none=True, metadata={"description": "per household"})
    low_stock_at = f.Integer(required=True)
    active = f.Boolean(required=True)
    low = f.Function(lambda g: g.stock <= g.low_stock_at, metadata={"type": "boolean"})


class GoodInSchema(In):
    name = f.String(required=True, validate=v.Length(1, 100))
    price = f.Integer(required=True, strict=True, validate=v.Range(1, MAX_PRICE))
    unit = f.String(load_default="件", validate=v.Length(1, 16))
    limit_per_period = f.Integer(
        load_default=None, allow_none=True, strict=True, validate=v.Range(1, MAX_QUANTITY)
    )
    low_stock_at = f.Integer(load_default=5, strict=True, validate=v.Range(0, MAX_QUANTITY))


class GoodUpdateSchema(In):
    name = f.String(validate=v.Length(1, 100))
    price = f.Integer(strict=True, validate=v.Range(1, MAX_PRICE))
    unit = f.String(validate=v.Length(1, 16))
    limit_per_period = f.Integer(allow_none=True, strict=True, validate=v.Range(1, MAX_QUANTITY))
    low_stock_at = f.Integer(strict=True, validate=v.Range(0, MAX_QUANTITY))
    active = f.Boolean()


class GoodsQuerySchema(In):
    all = f.Boolean(load_default=False, metadata={"description": "include goods off the shelf"})


class MovementInSchema(In):
    kind = f.String(
        required=True,
        validate=v.OneOf(
            [MovementKind.DONATION, MovementKind.PURCHASE, MovementKind.ADJUSTMENT],
        ),
        metadata={"description": "donation 捐赠 | purchase 采购 | adjustment 调整 (needs a note)"},
    )
    quantity = f.Integer(required=True, strict=True, validate=v.Range(-MAX_QUANTITY, MAX_QUANTITY))
    source = f.String(load_default="", validate=v.Length(0, 100))
    note = f.String(load_default="", validate=v.Length(0, 500))


class MovementSchema(ma.Schema):
    id = f.Integer(required=True)
    good_id = f.Integer(required=True)
    kind = f.String(required=True)
    quantity = f.Integer(required=True)
    stock_after = f.Integer(required=True)
    source = f.String(required=True)
    note = f.String(required=True)
    redemption_id = f.Integer(allow_none=True)
    actor_id = f.Integer(allow_none=True)
    created_at = f.DateTime(required=True)


class LowStockQuerySchema(In):
    store_id = f.Integer(validate=ID)


# --- window ------------------------------------------------------------------------------------


class WindowSchema(ma.Schema):
    scheme = f.String(required=True)
    period = f.String(required=True)
    days = f.Integer(allow_none=True, metadata={"description": "last N days; null: all period"})
    opens_on = f.Date(required=True)
    closes_on = f.Date(required=True)
    open = f.Boolean(required=True)
    threshold = f.Integer(required=True, metadata={"description": "minimum period score"})


class WindowInSchema(In):
    days = f.Integer(required=True, allow_none=True, strict=True, validate=v.Range(1, 366))


# --- the resident's code ---------------------------------------------------------------------


class QrTokenSchema(ma.Schema):
    token = f.String(required=True, metadata={"description": "the signed token"})
    payload = f.String(required=True, metadata={"description": "the text to put in the QR"})
    expires_in = f.Integer(required=True, metadata={"description": "seconds"})
    expires_at = f.DateTime(required=True)


# --- counter: scan, preview, redeem -------------------------------------------------------------


class BasketLineSchema(In):
    good_id = f.Integer(required=True, strict=True, validate=ID)
    quantity = f.Integer(required=True, strict=True, validate=QUANTITY)


class ScanInSchema(In):
    code = f.String(
        required=True,
        validate=v.Length(1, 1000),
        metadata={"description": "what the scanner typed: PTS1:…, PTSCHK:…, PTSCARD:… or a serial"},
    )
    items = f.List(f.Nested(BasketLineSchema), load_default=list, validate=v.Length(0, 50))


class RefusalSchema(ma.Schema):
    code = f.String(required=True)
    message = f.String(required=True)


class MemberSchema(ma.Schema):
    name = f.String(required=True)
    is_head = f.Boolean(required=True)


class HouseholdViewSchema(ma.Schema):
    id = f.Integer(required=True)
    number = f.String(required=True)
    door_plate = f.String(allow_none=True)
    head_name = f.String(required=True)
    members = f.List(f.Nested(MemberSchema), required=True)


class PricedLineSchema(ma.Schema):
    good_id = f.Integer(required=True)
    name = f.String(required=True)
    unit = f.String(required=True)
    unit_price = f.Integer(required=True)
    quantity = f.Integer(required=True)
    amount = f.Integer(required=True)
    stock = f.Integer(required=True)
    limit_left = f.Integer(allow_none=True)
    refusal = f.Nested(RefusalSchema, allow_none=True)


class WindowViewSchema(ma.Schema):
    period = f.String(required=True)
    days = f.Integer(allow_none=True)
    opens_on = f.Date(required=True)
    closes_on = f.Date(required=True)
    open = f.Boolean(required=True)


class PreviewSchema(ma.Schema):
    household = f.Nested(HouseholdViewSchema, required=True)
    store_id = f.Integer(required=True)
    period = f.String(required=True)
    available = f.Integer(required=True)
    owed = f.Integer(required=True)
    score = f.Integer(required=True)
    threshold = f.Integer(required=True)
    window = f.Nested(WindowViewSchema, required=True)
    lines = f.List(f.Nested(PricedLineSchema), required=True)
    total = f.Integer(required=True)
    balance_after = f.Integer(required=True)
    can_redeem = f.Boolean(required=True)
    refusal = f.Nested(RefusalSchema, allow_none=True)


class CheckoutSchema(PreviewSchema):
    method = f.String(required=True, metadata={"description": "phone | card"})
    checkout = f.String(required=True, metadata={"description": "send back to confirm"})
    checkout_expires_in = f.Integer(required=True, metadata={"description": "seconds"})


class RedeemInSchema(In):
    checkout = f.String(
        required=True,
        validate=v.Length(1, 1000),
        metadata={"description": "the `checkout` of the scan (PTS1:… or PTSCHK:…)"},
    )
    items = f.List(f.Nested(BasketLineSchema), required=True, validate=v.Length(1, 50))
    proxy = f.Boolean(load_default=False, metadata={"description": "clerk redeems for someone"})
    proxy_note = f.String(load_default="", validate=v.Length(0, 200))


class ReceiptItemSchema(ma.Schema):
    good_id = f.Integer(required=True)
    name = f.String(required=True)
    unit = f.String(required=True)
    unit_price = f.Integer(required=True)
    quantity = f.Integer(required=True)
    amount = f.Integer(required=True)


class ReceiptSchema(ma.Schema):
    """A redemption as printed for the resident: what, how much, and what is left."""

    id = f.Integer(required=True)
    store_id = f.Integer(required=True)
    store_name = f.String(attribute="store.name", required=True)
    household_id = f.Integer(required=True)
    household_number = f.String(attribute="household.number", required=True)
    head_name = f.Function(lambda r: household_view(r.household).head_name)
    method = f.String(required=True)
    proxy = f.Boolean(required=True)
    proxy_note = f.String(required=True)
    period = f.String(attribute="period_key", required=True)
    items = f.List(f.Nested(ReceiptItemSchema), required=True)
    total = f.Integer(required=True)
    balance_after = f.Integer(required=True)
    state = f.String(required=True)
    clerk_name = f.String(attribute="clerk.display_name", required=True)
    created_at = f.DateTime(required=True)
    entry_seq = f.Integer(attribute="entry.seq", required=True)
    entry_hash = f.String(attribute="entry.hash", required=True)
    cancelled_at = f.DateTime(allow_none=True)
    cancel_reason = f.String(allow_none=True)
    reversal_entry_id = f.Integer(allow_none=True)


class CancelInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 200))


class RedemptionQuerySchema(In):
    store_id = f.Integer(validate=ID)
    date = f.Date(metadata={"description": "a Beijing date, YYYY-MM-DD"})
    limit = f.Integer(load_default=200, validate=v.Range(1, 1000))


# --- orders ------------------------------------------------------------------------------------


class OrderInSchema(In):
    items = f.List(f.Nested(BasketLineSchema), required=True, validate=v.Length(1, 50))


class OrderItemSchema(ma.Schema):
    good_id = f.Integer(required=True)
    name = f.String(attribute="good.name", required=True)
    unit = f.String(attribute="good.unit", required=True)
    unit_price = f.Integer(attribute="good.price", required=True)
    quantity = f.Integer(required=True)
    amount = f.Function(lambda i: i.good.price * i.quantity, metadata={"type": "integer"})


class OrderSchema(ma.Schema):
    id = f.Integer(required=True)
    store_id = f.Integer(required=True)
    store_name = f.String(attribute="store.name", required=True)
    household = f.Function(
        lambda o: HouseholdViewSchema().dump(household_view(o.household)),
        metadata={"type": "object"},
    )
    state = f.String(required=True)
    items = f.List(f.Nested(OrderItemSchema), required=True)
    total = f.Function(
        lambda o: sum(i.good.price * i.quantity for i in o.items),
        metadata={"type": "integer", "description": "at today's prices; charged on collection"},
    )
    created_at = f.DateTime(required=True)
    closed_at = f.DateTime(allow_none=True)


class OrderQuerySchema(In):
    state = f.String(validate=v.OneOf([s.value for s in OrderState]))
    store_id = f.Integer(validate=ID)


class CollectInSchema(In):
    proxy = f.Boolean(load_default=False)
    proxy_note = f.String(load_default="", validate=v.Length(0, 200))


# --- cards -------------------------------------------------------------------------------------


class CardSchema(ma.Schema):
    id = f.Integer(required=True)
    household_id = f.Integer(required=True)
    household_number = f.String(attribute="household.number", required=True)
    serial = f.Function(lambda c: format_serial(c.serial), metadata={"type": "string"})
    issued_at = f.DateTime(required=True)
    revoked_at = f.DateTime(allow_none=True)
    revoke_reason = f.String(allow_none=True)


class CardIssueInSchema(In):
    household_ids = f.List(
        f.Integer(strict=True, validate=ID),
        validate=v.Length(1, 5000),
        metadata={"description": "omit for every active household without a card"},
    )
    reissue = f.Boolean(
        load_default=False, metadata={"description": "revoke and replace existing cards"}
    )


class CardIssueResultSchema(ma.Schema):
    issued = f.Integer(required=True)
    cards = f.List(f.Nested(CardSchema), required=True)


class CardRevokeInSchema(In):
    reason = f.String(required=True, validate=v.Length(1, 200))


class CardQuerySchema(In):
    household_id = f.List(f.Integer(validate=ID), metadata={"description": "repeat to choose"})
    all = f.Boolean(load_default=False, metadata={"description": "include revoked cards"})
