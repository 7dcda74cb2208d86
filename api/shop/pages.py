"""The resident's side of the points shop (phone-first): my QR code for the counter, the shop's
shelves and ordering, also reached by scanning a store's printed counter code."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from api.db import db, writes_on_get
from api.shop import qr
from api.shop.actions import my_phone_code, token_settings
from api.web.helpers import my_household, page_audit, page_village, signed_in
from api.web.identity import current_actor
from points import shop
from points.db import utcnow
from points.errors import PointsError
from points.ledger import statements
from points.models.org import Role
from points.shop import orders, redemption
from points.shop.redemption import METHOD_NAMES, BasketLine

bp = Blueprint("shop_pages", __name__, template_folder="templates")


ORDER_STATES = {"pending": "待取货", "collected": "已取货", "cancelled": "已取消"}


@bp.get("/v/<code>/my/qr")
@signed_in
def my_qr(code):
    """My household's code to show at the counter; the page fetches a fresh one each minute."""

    village = page_village(code, Role.RESIDENT)
    home = my_household(village)
    return render_template(
        "resident/qr.html", village=village, home=home, seconds=token_settings().phone_seconds
    )


@bp.get("/v/<code>/my/qr.png")
@writes_on_get
@signed_in
def my_qr_png(code):
    """A fresh single-use code for my household (the same as the API's my/qr.png)."""

    page_village(code, Role.RESIDENT)
    _nonce, text, seconds = my_phone_code(code)
    response = Response(qr.png(text, box_size=8), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Expires-In"] = str(seconds)
    return response


@bp.get("/v/<code>/my/shop")
@signed_in
def shop_page(code):
    """The store's goods and prices, when I may redeem, ordering, and my orders and receipts."""
    village = page_village(code, Role.RESIDENT)
    home = my_household(village)
    stores = shop.list_stores(db(), village=village, active_only=True)
    wanted = request.args.get("store_id", type=int)
    store = next((s for s in stores if s.id == wanted), stores[0] if stores else None)
    scheme = shop.redeemable_scheme(db(), village=village) if stores else None
    return render_template(
        "resident/shop.html",
        village=village,
        home=home,
        stores=stores,
        store=store,
        goods=shop.list_goods(db(), store=store, active_only=True) if store else [],
        window=redemption.get_window(db(), scheme=scheme, now=utcnow()) if scheme else None,
        threshold=scheme.redemption_threshold if scheme else 0,
        balance=statements.balance_view(db(), scheme=scheme, subject_id=home.id, now=utcnow())
        if scheme
        else None,
        orders=list(reversed(orders.list_orders(db(), village=village, actor=current_actor())))[
            :20
        ],
        receipts=redemption.list_redemptions(db(), village=village, household_id=home.id, limit=20),
        states=ORDER_STATES,
        methods=METHOD_NAMES,
    )


@bp.post("/v/<code>/my/shop/order")
@signed_in
def place_order(code):
    """Order from my phone; the clerk hands it over and the points are spent then."""
    village = page_village(code, Role.RESIDENT)
    store = shop.get_store(
        db(), village=village, store_id=request.form.get("store_id", type=int) or 0
    )
    back = url_for("shop_pages.shop_page", code=village.code, store_id=store.id)
    try:
        basket = []
        for good in shop.list_goods(db(), store=store, active_only=True):
            raw = (request.form.get(f"qty-{good.id}") or "").strip()
            if raw and raw != "0":
                basket.append(BasketLine(good.id, int(raw)))
        order = orders.create_order(
            db(), village=village, store=store, actor=current_actor(), basket=basket, now=utcnow()
        )
        page_audit(
            village,
            "order.create",
            order,
            f"户 {order.household.number} 在{store.name}下单",
            "order",
        )
        flash(f"已下单（订单 {order.id}），请到{store.name}取货，取货时才扣积分", "ok")
    except (PointsError, ValueError) as exc:
        db().rollback()
        flash(getattr(exc, "message", None) or "数量要填整数", "error")
    return redirect(back)


@bp.post("/v/<code>/my/shop/orders/<int:order_id>/cancel")
@signed_in
def cancel_order(code, order_id):
    """Withdraw my pending order."""
    village = page_village(code, Role.RESIDENT)
    try:
        order = orders.cancel_order(
            db(), village=village, order_id=order_id, actor=current_actor(), now=utcnow()
        )
        page_audit(
            village,
            "order.cancel",
            order,
            f"取消订单 {order.id}（户 {order.household.number}）",
            "order",
        )
        flash(f"订单 {order.id} 已取消", "ok")
    except PointsError as exc:
        db().rollback()
        flash(exc.message, "error")
    return redirect(url_for("shop_pages.shop_page", code=village.code))


@bp.get("/shop/<code>/stores/<int:store_id>")
@signed_in
def counter_code(code, store_id):
    """Where a store's printed counter code leads: the store's page for ordering."""
    return redirect(url_for("shop_pages.shop_page", code=code, store_id=store_id))
