"""Resident pages (phone-first): my household's points and history, declaring a good deed
with a photo, objecting to a notice during 公示, my QR code for the shop counter, and the
shop's shelves with ordering (also reached by scanning a store's printed counter code)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from api import qr
from api.auth import current_actor
from api.db import db
from api.evidence import attach_photos
from api.pages import page_audit, page_village, signed_in
from points import catalog, claims, org, shop
from points.claims import notices
from points.db import utcnow
from points.errors import PointsError
from points.ledger import statements
from points.models.claims import Channel
from points.models.org import Role
from points.periods import local_date
from points.shop import orders, redemption
from points.shop.redemption import METHOD_NAMES, BasketLine

bp = Blueprint("resident", __name__, url_prefix="/v/<code>/my")
# A store's printed counter code opens /shop/<code>/stores/<id> (see api.qr.counter_url).
counter_code_bp = Blueprint("counter_code", __name__, url_prefix="/shop")
ORDER_STATES = {"pending": "待取货", "collected": "已取货", "cancelled": "已取消"}


def _my_household(village):
    actor = current_actor()
    if actor.household_id is None:
        raise PointsError("您的账号没有关联农户，请联系村委会")
    return org.get_household(db(), village=village, household_id=actor.household_id)


@bp.get("/")
@signed_in
def home(code):
    """My household: points I can spend, this period's score, and every entry with its reason."""
    village = page_village(code, Role.RESIDENT)
    home = _my_household(village)
    scheme = statements.get_scheme(db(), village=village, code="household")
    balance = statements.balance_view(db(), scheme=scheme, subject_id=home.id, now=utcnow())
    lines = statements.subject_lines(db(), scheme=scheme, subject_id=home.id, limit=100)
    mine = claims.list_claims(db(), village=village, actor=current_actor(), limit=20)
    return render_template(
        "resident/home.html",
        village=village,
        home=home,
        balance=balance,
        lines=lines,
        claims=[c for c in mine if c.status != "posted"],
    )


@bp.route("/declare", methods=["GET", "POST"])
@signed_in
def declare(code):
    """Declare a good deed of my household with up to three photos."""
    village = page_village(code, Role.RESIDENT)
    home = _my_household(village)
    scheme = statements.get_scheme(db(), village=village, code="household")
    version = catalog.adopted_version(db(), scheme=scheme)
    rules = [r for r in (version.rules if version else []) if "resident" in r.recorder_roles]
    if request.method == "POST":
        form = request.form
        photos = [f for f in request.files.getlist("photos") if f and f.filename][:3]
        try:
            occurred = date.fromisoformat(form.get("occurred_on") or "")
            claim = claims.record(
                db(),
                village=village,
                scheme=scheme,
                actor=current_actor(),
                now=utcnow(),
                channel=Channel.DECLARED,
                item=claims.ClaimInput(
                    household_id=home.id,
                    rule_code=form.get("rule_code", ""),
                    occurred_on=occurred,
                    description=form.get("description", ""),
                    proposed_points=int(form["proposed_points"])
                    if form.get("proposed_points")
                    else None,
                    has_evidence=bool(photos),
                ),
            )
            attach_photos(db(), claim, photos)
            page_audit(
                village, "claim.declare", claim, f"村民申报，附照片 {len(photos)} 张", "claim"
            )
            flash("申报已提交，等待评议小组审核", "ok")
            return redirect(url_for("resident.home", code=village.code))
        except (PointsError, ValueError) as exc:
            db().rollback()
            flash(getattr(exc, "message", None) or "请检查填写的内容", "error")
    return render_template(
        "resident/declare.html",
        village=village,
        rules=rules,
        today=local_date(utcnow()).isoformat(),
    )


@bp.route("/notices", methods=["GET", "POST"])
@signed_in
def notices_page(code):
    """Open notices of my village, each with a button to object."""
    village = page_village(
        code, Role.RESIDENT, Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK
    )
    if request.method == "POST":
        try:
            claim = claims.get_claim(db(), village=village, claim_id=int(request.form["claim_id"]))
            objection = claims.object_to(
                db(),
                claim=claim,
                actor=current_actor(),
                reason=request.form.get("reason", ""),
                now=utcnow(),
            )
            page_audit(
                village, "objection.raise", objection, f"对事项 #{claim.id} 提出异议", "objection"
            )
            flash("异议已提交，评议小组会尽快处理", "ok")
        except PointsError as exc:
            db().rollback()
            flash(exc.message, "error")
        return redirect(url_for("resident.notices_page", code=village.code))
    items = [
        n
        for n in notices.public_notices(db(), village=village, now=utcnow())
        if n["kind"] == "notice"
    ]
    return render_template("resident/notices.html", village=village, items=items)


# --- the shop: my code, the shelves, my orders -------------------------------------------------


@bp.get("/qr")
@signed_in
def my_qr(code):
    """My household's code to show at the counter; the page fetches a fresh one each minute."""
    from api.views_shop import _settings

    village = page_village(code, Role.RESIDENT)
    home = _my_household(village)
    return render_template(
        "resident/qr.html", village=village, home=home, seconds=_settings().phone_seconds
    )


@bp.get("/qr.png")
@signed_in
def my_qr_png(code):
    """A fresh single-use code for my household (the same as the API's my/qr.png)."""
    from api.views_shop import _my_nonce

    page_village(code, Role.RESIDENT)
    _nonce, text, seconds = _my_nonce(code)
    response = Response(qr.png(text, box_size=8), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Expires-In"] = str(seconds)
    return response


@bp.get("/shop")
@signed_in
def shop_page(code):
    """The store's goods and prices, when I may redeem, ordering, and my orders and receipts."""
    village = page_village(code, Role.RESIDENT)
    home = _my_household(village)
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


@bp.post("/shop/order")
@signed_in
def place_order(code):
    """Order from my phone; the clerk hands it over and the points are spent then."""
    village = page_village(code, Role.RESIDENT)
    store = shop.get_store(
        db(), village=village, store_id=request.form.get("store_id", type=int) or 0
    )
    back = url_for("resident.shop_page", code=village.code, store_id=store.id)
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


@bp.post("/shop/orders/<int:order_id>/cancel")
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
    return redirect(url_for("resident.shop_page", code=village.code))


@counter_code_bp.get("/<code>/stores/<int:store_id>")
@signed_in
def counter_code(code, store_id):
    """Where a store's printed counter code leads: the store's page for ordering."""
    return redirect(url_for("resident.shop_page", code=code, store_id=store_id))
