"""The points shop (积分超市): stores, goods and stock, the resident's phone code, the counter
(scan, preview, redeem, cancel), orders from the counter code, and printed household cards.

Who does what: admins run the shop's set-up, cards and cancellations; clerks stock the shelves
and serve the counter (a clerk's scope is the whole village: stores are not assigned to clerks
yet); residents see the shelves, show their code and order from their phone.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, current_app, request
from flask_smorest import Blueprint

from api.db import db, writes_on_get
from api.rest import ApiView, audit, documented_errors, village_for
from api.shop import qr
from api.shop.actions import audit_redemption, my_phone_code, token_settings
from api.shop.cards_pdf import sheet_for
from api.shop.schemas import (
    CancelInSchema,
    CardIssueInSchema,
    CardIssueResultSchema,
    CardQuerySchema,
    CardRevokeInSchema,
    CardSchema,
    CheckoutSchema,
    CollectInSchema,
    GoodInSchema,
    GoodSchema,
    GoodsQuerySchema,
    GoodUpdateSchema,
    LowStockQuerySchema,
    MovementInSchema,
    MovementSchema,
    OrderInSchema,
    OrderQuerySchema,
    OrderSchema,
    QrTokenSchema,
    ReceiptSchema,
    RedeemInSchema,
    RedemptionQuerySchema,
    ScanInSchema,
    StoreInSchema,
    StoreSchema,
    StoreUpdateSchema,
    WindowInSchema,
    WindowSchema,
)
from api.web.identity import current_actor
from points import org, shop
from points.db import utcnow
from points.models.org import Role
from points.shop import credentials, orders, redemption
from points.shop.credentials import CardRef
from points.shop.redemption import BasketLine

blp = Blueprint("shop", __name__, url_prefix="/api/v1", description="积分超市")

STAFF = (Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK)
SHOPKEEPERS = (Role.ADMIN, Role.CLERK)


def _errors(*codes):
    return documented_errors(blp, *codes)


def _basket(items) -> list[BasketLine]:
    return [BasketLine(i["good_id"], i["quantity"]) for i in items]


def _image(data: bytes, kind: str, **headers) -> Response:
    mimetype = {"png": "image/png", "svg": "image/svg+xml"}[kind]
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers)
    return response


def _store(code, store_id, *roles):
    village = village_for(code, *roles)
    return village, shop.get_store(db(), village=village, store_id=store_id)


# --- stores and goods ------------------------------------------------------------------------


@blp.route("/villages/<code>/stores")
class Stores(ApiView):
    @blp.response(200, StoreSchema(many=True))
    @_errors()
    def get(self, code):
        """List the village's stores (the 积分超市 and designated shops)."""
        village = village_for(code, *STAFF, Role.RESIDENT)
        staff = current_actor().has(village, *STAFF)
        return shop.list_stores(db(), village=village, active_only=not staff)

    @blp.arguments(StoreInSchema)
    @blp.response(201, StoreSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Open a store."""
        village = village_for(code, Role.ADMIN)
        store = shop.create_store(db(), village=village, now=utcnow(), **data)
        audit(village, "store.create", store, f"开设商店 {store.name}")
        return store


@blp.route("/villages/<code>/stores/<int:store_id>")
class StoreItem(ApiView):
    @blp.arguments(StoreUpdateSchema)
    @blp.response(200, StoreSchema)
    @_errors(401, 403, 404, 409, 422)
    def patch(self, data, code, store_id):
        """Rename a store, change its address or kind, close or reopen it."""
        village, store = _store(code, store_id, Role.ADMIN)
        shop.update_store(db(), store=store, **data)
        audit(village, "store.update", store, f"修改商店 {store.name}：{data}")
        return store


@blp.route("/villages/<code>/stores/<int:store_id>/goods")
class Goods(ApiView):
    @blp.arguments(GoodsQuerySchema, location="query")
    @blp.response(200, GoodSchema(many=True))
    @_errors(401, 403, 404, 422)
    def get(self, args, code, store_id):
        """List a store's goods with prices and stock (residents see what is on the shelf)."""
        village, store = _store(code, store_id, *STAFF, Role.RESIDENT)
        staff = current_actor().has(village, *STAFF)
        return shop.list_goods(db(), store=store, active_only=not (staff and args["all"]))

    @blp.arguments(GoodInSchema)
    @blp.response(201, GoodSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, store_id):
        """Put a good on the store's list (stock arrives as movements)."""
        village, store = _store(code, store_id, *SHOPKEEPERS)
        good = shop.create_good(db(), store=store, now=utcnow(), **data)
        audit(village, "good.create", good, f"{store.name} 新增商品 {good.name}（{good.price} 分）")
        return good


@blp.route("/villages/<code>/goods/<int:good_id>")
class GoodItem(ApiView):
    @blp.arguments(GoodUpdateSchema)
    @blp.response(200, GoodSchema)
    @_errors(401, 403, 404, 409, 422)
    def patch(self, data, code, good_id):
        """Change a good's name, unit, price, limit or low-stock level, or take it off the shelf."""
        village = village_for(code, *SHOPKEEPERS)
        good = shop.get_good(db(), village=village, good_id=good_id)
        shop.update_good(db(), good=good, **data)
        audit(village, "good.update", good, f"修改商品 {good.name}：{data}")
        return good


@blp.route("/villages/<code>/goods/<int:good_id>/stock")
class GoodStock(ApiView):
    @blp.response(200, MovementSchema(many=True))
    @_errors()
    def get(self, code, good_id):
        """A good's stock movements, newest first: who, when, how many, and why."""
        village = village_for(code, *SHOPKEEPERS)
        good = shop.get_good(db(), village=village, good_id=good_id)
        return shop.list_movements(db(), good=good)

    @blp.arguments(MovementInSchema)
    @blp.response(201, MovementSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, good_id):
        """Record a donation, a purchase or an adjustment of a good's stock."""
        village = village_for(code, *SHOPKEEPERS)
        good = shop.get_good(db(), village=village, good_id=good_id)
        move = shop.move_stock(
            db(), good=good, actor_id=current_actor().user_id, now=utcnow(), **data
        )
        audit(
            village,
            "stock.move",
            move,
            f"{good.name} 库存 {move.quantity:+d}（{data['kind']}），现有 {move.stock_after}",
            "stock_movement",
        )
        return move


@blp.route("/villages/<code>/low-stock")
class LowStock(ApiView):
    @blp.arguments(LowStockQuerySchema, location="query")
    @blp.response(200, GoodSchema(many=True))
    @_errors(401, 403, 404, 422)
    def get(self, args, code):
        """Goods at or below their low-stock level, emptiest first."""
        village = village_for(code, *SHOPKEEPERS)
        store = None
        if "store_id" in args:
            store = shop.get_store(db(), village=village, store_id=args["store_id"])
        return shop.low_stock(db(), village=village, store=store)


@blp.route("/villages/<code>/redemption-window")
class RedemptionWindow(ApiView):
    @blp.response(200, WindowSchema)
    @_errors()
    def get(self, code):
        """When households may redeem this period, and the score they need."""
        village = village_for(code, *STAFF, Role.RESIDENT)
        return _window(village)

    @blp.arguments(WindowInSchema)
    @blp.response(200, WindowSchema)
    @_errors(401, 403, 404, 422)
    def put(self, data, code):
        """Open redemption in the last N days of each period (null: the whole period)."""
        village = village_for(code, Role.ADMIN)
        scheme = shop.redeemable_scheme(db(), village=village)
        redemption.set_window(
            db(), scheme=scheme, days=data["days"], actor_id=current_actor().user_id, now=utcnow()
        )
        days = data["days"]
        audit(
            village,
            "shop.window",
            scheme,
            f"兑换时间改为{'每期最后 ' + str(days) + ' 天' if days else '全期开放'}",
            "scheme",
        )
        return _window(village)


def _window(village):
    scheme = shop.redeemable_scheme(db(), village=village)
    window = redemption.get_window(db(), scheme=scheme, now=utcnow())
    return dict(asdict(window), scheme=scheme.code, threshold=scheme.redemption_threshold)


# --- the resident's phone code -----------------------------------------------------------------


@blp.route("/villages/<code>/my/qr-token")
class MyToken(ApiView):
    @blp.response(200, QrTokenSchema)
    @_errors()
    @writes_on_get
    def get(self, code):
        """A fresh single-use code for my household (about 60 s); the page shows it and refreshes."""
        nonce, text, seconds = my_phone_code(code)
        return {
            "token": text.removeprefix(qr.PHONE_PREFIX),
            "payload": text,
            "expires_in": seconds,
            "expires_at": nonce.expires_at,
        }


@blp.route("/villages/<code>/my/qr.png")
class MyTokenPng(ApiView):
    @blp.response(200, content_type="image/png", description="二维码图片")
    @_errors()
    @writes_on_get
    def get(self, code):
        """A fresh single-use code for my household, as a PNG."""
        _nonce, text, seconds = my_phone_code(code)
        return _image(qr.png(text), "png", **{"X-Expires-In": str(seconds)})


@blp.route("/villages/<code>/my/qr.svg")
class MyTokenSvg(ApiView):
    @blp.response(200, content_type="image/svg+xml", description="二维码图片")
    @_errors()
    @writes_on_get
    def get(self, code):
        """A fresh single-use code for my household, as an SVG."""
        _nonce, text, seconds = my_phone_code(code)
        return _image(qr.svg(text), "svg", **{"X-Expires-In": str(seconds)})


# --- the counter -------------------------------------------------------------------------------


@blp.route("/villages/<code>/stores/<int:store_id>/scan")
class Scan(ApiView):
    @blp.arguments(ScanInSchema)
    @blp.response(200, CheckoutSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, store_id):
        """Scan a phone code or a household card: who it is, their points, the basket priced."""
        village, store = _store(code, store_id, Role.CLERK)
        settings, now = token_settings(), utcnow()
        credential = qr.parse_scan(settings, data["code"], village=village, now=now)
        checkout = redemption.scan(
            db(),
            village=village,
            store=store,
            credential=credential,
            basket=_basket(data["items"]),
            now=now,
            checkout_seconds=settings.checkout_seconds,
        )
        if isinstance(credential, CardRef):
            text = qr.sign(settings, checkout.nonce, prefix=qr.CHECKOUT_PREFIX)
        else:
            text = data["code"].strip()
        result = asdict(checkout.preview)
        result.update(
            can_redeem=checkout.preview.can_redeem,
            balance_after=checkout.preview.balance_after,
            method="card" if checkout.card else "phone",
            checkout=text,
            checkout_expires_in=max(0, int((checkout.nonce.expires_at - now).total_seconds())),
        )
        return result


@blp.route("/villages/<code>/stores/<int:store_id>/redemptions")
class Redeem(ApiView):
    @blp.arguments(RedeemInSchema)
    @blp.response(201, ReceiptSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, store_id):
        """Confirm: spend the household's points on the basket, all or nothing; the receipt."""
        village, store = _store(code, store_id, Role.CLERK)
        now = utcnow()
        ref = qr.read_token(token_settings(), data["checkout"], village=village, now=now)
        receipt = redemption.redeem(
            db(),
            village=village,
            store=store,
            basket=_basket(data["items"]),
            actor=current_actor(),
            now=now,
            nonce=ref,
            proxy=data["proxy"],
            proxy_note=data["proxy_note"],
        )
        audit_redemption(village, receipt)
        return receipt


@blp.route("/villages/<code>/redemptions")
class Redemptions(ApiView):
    @blp.arguments(RedemptionQuerySchema, location="query")
    @blp.response(200, ReceiptSchema(many=True))
    @_errors(401, 403, 404, 422)
    def get(self, args, code):
        """Redemptions, newest first (one store, one Beijing day)."""
        village = village_for(code, *SHOPKEEPERS)
        return redemption.list_redemptions(
            db(),
            village=village,
            store_id=args.get("store_id"),
            on=args.get("date"),
            limit=args["limit"],
        )


@blp.route("/villages/<code>/redemptions/<int:redemption_id>")
class RedemptionItem(ApiView):
    @blp.response(200, ReceiptSchema)
    @_errors()
    def get(self, code, redemption_id):
        """One redemption's receipt."""
        village = village_for(code, *SHOPKEEPERS)
        return redemption.get_redemption(db(), village=village, redemption_id=redemption_id)


@blp.route("/villages/<code>/redemptions/<int:redemption_id>/cancel")
class RedemptionCancel(ApiView):
    @blp.arguments(CancelInSchema)
    @blp.response(200, ReceiptSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, redemption_id):
        """Cancel today's redemption: the points come back by a reversal, the goods onto the shelf."""
        village = village_for(code, Role.ADMIN)
        receipt = redemption.cancel_redemption(
            db(),
            village=village,
            redemption_id=redemption_id,
            actor=current_actor(),
            reason=data["reason"],
            now=utcnow(),
        )
        audit(
            village,
            "redemption.cancel",
            receipt,
            f"撤销兑换单 {receipt.id}：户 {receipt.household.number} 退回 {receipt.total} 分"
            f"（{data['reason']}）",
            reversal_entry_id=receipt.reversal_entry_id,
        )
        return receipt


@blp.route("/villages/<code>/households/<int:household_id>/redemptions")
class HouseholdRedemptions(ApiView):
    @blp.response(200, ReceiptSchema(many=True))
    @_errors()
    def get(self, code, household_id):
        """A household's receipts, newest first."""
        village = village_for(code, *STAFF, Role.RESIDENT)
        home = org.get_household(db(), village=village, household_id=household_id)
        current_actor().require_household(village, home)
        return redemption.list_redemptions(db(), village=village, household_id=home.id)


# --- orders from the counter code --------------------------------------------------------------


def _counter_code(code, store_id, kind):
    village, store = _store(code, store_id, *SHOPKEEPERS)
    base = current_app.config.get("PUBLIC_BASE_URL") or request.url_root
    url = qr.counter_url(base, village.code, store.id)
    return _image(qr.png(url) if kind == "png" else qr.svg(url), kind)


@blp.route("/villages/<code>/stores/<int:store_id>/counter-code.png")
class CounterCodePng(ApiView):
    @blp.response(200, content_type="image/png", description="柜台码图片")
    @_errors()
    def get(self, code, store_id):
        """The store's counter code to print (PNG): it opens the store's page, spends nothing."""
        return _counter_code(code, store_id, "png")


@blp.route("/villages/<code>/stores/<int:store_id>/counter-code.svg")
class CounterCodeSvg(ApiView):
    @blp.response(200, content_type="image/svg+xml", description="柜台码图片")
    @_errors()
    def get(self, code, store_id):
        """The store's counter code to print (SVG): it opens the store's page, spends nothing."""
        return _counter_code(code, store_id, "svg")


@blp.route("/villages/<code>/stores/<int:store_id>/orders")
class StoreOrders(ApiView):
    @blp.arguments(OrderInSchema)
    @blp.response(201, OrderSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, store_id):
        """Order from my phone; the clerk hands it over and the points are spent then."""
        village, store = _store(code, store_id, Role.RESIDENT)
        order = orders.create_order(
            db(),
            village=village,
            store=store,
            actor=current_actor(),
            basket=_basket(data["items"]),
            now=utcnow(),
        )
        audit(village, "order.create", order, f"户 {order.household.number} 在{store.name}下单")
        return order


@blp.route("/villages/<code>/orders")
class Orders(ApiView):
    @blp.arguments(OrderQuerySchema, location="query")
    @blp.response(200, OrderSchema(many=True))
    @_errors(401, 403, 404, 422)
    def get(self, args, code):
        """Orders: the counter sees every one (filter pending), a resident their own."""
        village = village_for(code, *SHOPKEEPERS, Role.RESIDENT)
        return orders.list_orders(db(), village=village, actor=current_actor(), **args)


@blp.route("/villages/<code>/orders/<int:order_id>/collect")
class OrderCollect(ApiView):
    @blp.arguments(CollectInSchema)
    @blp.response(201, ReceiptSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, order_id):
        """Hand an order over: its points are spent now, once; the receipt."""
        village = village_for(code, Role.CLERK)
        receipt = orders.collect_order(
            db(), village=village, order_id=order_id, actor=current_actor(), now=utcnow(), **data
        )
        audit_redemption(village, receipt)
        return receipt


@blp.route("/villages/<code>/orders/<int:order_id>/cancel")
class OrderCancel(ApiView):
    @blp.response(200, OrderSchema)
    @_errors(401, 403, 404, 409)
    def post(self, code, order_id):
        """Withdraw a pending order (the household that placed it, or a clerk)."""
        village = village_for(code, Role.CLERK, Role.RESIDENT)
        order = orders.cancel_order(
            db(), village=village, order_id=order_id, actor=current_actor(), now=utcnow()
        )
        audit(village, "order.cancel", order, f"取消订单 {order.id}（户 {order.household.number}）")
        return order


# --- household cards -------------------------------------------------------------------------


@blp.route("/villages/<code>/cards")
class Cards(ApiView):
    @blp.arguments(CardQuerySchema, location="query")
    @blp.response(200, CardSchema(many=True))
    @_errors(401, 403, 404, 422)
    def get(self, args, code):
        """List household cards (live ones unless all=true)."""
        village = village_for(code, Role.ADMIN)
        return credentials.list_cards(
            db(), village=village, live_only=not args["all"], household_ids=args.get("household_id")
        )

    @blp.arguments(CardIssueInSchema)
    @blp.response(201, CardIssueResultSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Issue cards to households without one, or reissue (the old serial is revoked)."""
        village = village_for(code, Role.ADMIN)
        cards, issued = credentials.ensure_cards(
            db(),
            village=village,
            actor_id=current_actor().user_id,
            now=utcnow(),
            household_ids=data.get("household_ids"),
            reissue=data["reissue"],
        )
        what = "补办" if data["reissue"] else "发放"
        audit(village, "card.issue", village.code, f"{what}户卡 {issued} 张", "household_card")
        return {"issued": issued, "cards": cards}


@blp.route("/villages/<code>/cards/<int:card_id>/revoke")
class CardRevoke(ApiView):
    @blp.arguments(CardRevokeInSchema)
    @blp.response(200, CardSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, card_id):
        """Revoke a lost card: its serial is refused from now on."""
        village = village_for(code, Role.ADMIN)
        card = credentials.revoke_card(
            db(),
            village=village,
            card_id=card_id,
            actor_id=current_actor().user_id,
            reason=data["reason"],
            now=utcnow(),
        )
        audit(village, "card.revoke", card, f"户卡作废（{data['reason']}）", "household_card")
        return card


@blp.route("/villages/<code>/cards/sheet.pdf")
class CardSheet(ApiView):
    @blp.arguments(CardQuerySchema, location="query")
    @blp.response(200, content_type="application/pdf", description="A4 户卡打印页")
    @_errors(401, 403, 404, 422)
    def get(self, args, code):
        """The live cards as an A4 sheet to print and cut (2 × 5 a page)."""
        village = village_for(code, Role.ADMIN)
        cards = credentials.list_cards(
            db(), village=village, household_ids=args.get("household_id")
        )
        response = Response(sheet_for(db(), village, cards), mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'inline; filename="cards-{village.code}.pdf"'
        return response
