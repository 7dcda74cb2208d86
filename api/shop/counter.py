"""The shop counter (积分超市柜台) for clerks, on a phone or the counter PC: scan a resident's
phone code or a household card (a USB scanner types it and presses Enter, or the camera reads
it and the server decodes the frame), check who it is and their points, price a basket on the
server, confirm, print the receipt; hand over orders placed from the counter code; watch stock.

Every write goes through the same domain calls as the shop API (points.shop.redemption, orders,
shop) and is audited the same way; nothing here prices or spends on its own.
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from api.db import db
from api.shop import qr
from api.shop.actions import audit_redemption, token_settings
from api.web.helpers import page_audit, page_village, signed_in
from api.web.identity import current_actor
from api.web.qr import decode_frame
from points import shop
from points.db import utcnow
from points.errors import PointsError, ValidationError
from points.models.org import Role
from points.models.shop import OrderState
from points.shop import orders, redemption
from points.shop.credentials import CardRef
from points.shop.redemption import MAX_LINE_QUANTITY, METHOD_NAMES, BasketLine, household_view

bp = Blueprint("counter", __name__, url_prefix="/v/<code>/counter", template_folder="templates")
SHOPKEEPERS = (Role.ADMIN, Role.CLERK)
MOVE_KINDS = {"donation": "捐赠", "purchase": "采购", "adjustment": "调整（盘点）"}


def _store(village):
    """The store the counter serves: ?store_id= / the form's store_id, else the first open one."""
    stores = shop.list_stores(db(), village=village, active_only=True)
    wanted = request.values.get("store_id", type=int)
    if wanted is not None:
        return shop.get_store(db(), village=village, store_id=wanted), stores
    if not stores:
        raise ValidationError("本村还没有开设积分超市，请管理员先开设商店")
    return stores[0], stores


def _form_basket(goods) -> list[BasketLine]:
    """Read the quantity boxes (qty-<good id>) of the store's goods; blank means none."""
    lines = []
    for good in goods:
        raw = (request.form.get(f"qty-{good.id}") or "").strip()
        if not raw or raw == "0":
            continue
        if not raw.isdigit() or not 0 < int(raw) <= MAX_LINE_QUANTITY:
            raise ValidationError(f"{good.name} 的数量要填 1 到 {MAX_LINE_QUANTITY} 的整数")
        lines.append(BasketLine(good.id, int(raw)))
    return lines


# A card sale's checkout code is ours, not the resident's: a card cannot be "refreshed".
CARD_CHECKOUT_MESSAGES = {
    "token_expired": "这次户卡结账已超时，请重新扫描户卡",
    "token_used": "这笔户卡结账已经完成，如需再兑换请重新扫描户卡",
    "token_invalid": "户卡结账信息无法识别，请重新扫描户卡",
}


def _message(exc: PointsError, text: str) -> str:
    """The refusal as the clerk should read it for what was scanned."""
    if (text or "").startswith(qr.CHECKOUT_PREFIX):
        return CARD_CHECKOUT_MESSAGES.get(exc.code, exc.message)
    return exc.message


def _basket_key(lines) -> str:
    return ",".join(f"{line.good_id}:{line.quantity}" for line in lines)


def _back(village, store=None):
    return redirect(url_for("counter.home", code=village.code, store_id=getattr(store, "id", None)))


@bp.get("")
@signed_in
def home(code):
    """The scan box, the camera button, pending orders and today's redemptions."""
    village = page_village(code, *SHOPKEEPERS)
    store, stores = _store(village)
    pending = orders.list_orders(
        db(), village=village, actor=current_actor(), state=OrderState.PENDING, store_id=store.id
    )
    today = redemption.list_redemptions(
        db(), village=village, store_id=store.id, on=_today(), limit=50
    )
    return render_template(
        "staff/counter.html",
        village=village,
        store=store,
        stores=stores,
        pending=pending,
        today=today,
        low=shop.low_stock(db(), village=village, store=store),
        methods=METHOD_NAMES,
    )


def _today():
    from points.periods import local_date

    return local_date(utcnow())


@bp.post("/scan")
@signed_in
def scan(code):
    """Who the scanned code belongs to, their points, and the basket priced by the server."""
    village = page_village(code, Role.CLERK)
    store, _stores = _store(village)
    goods = shop.list_goods(db(), store=store, active_only=True)
    try:
        return _preview(village, store, goods, request.form.get("code", ""), _form_basket(goods))
    except PointsError as exc:
        db().rollback()
        flash(_message(exc, request.form.get("code", "")), "error")
        return _back(village, store)


def _preview(village, store, goods, text, basket, status=200):
    settings, now = token_settings(), utcnow()
    text = (text or "").strip()
    credential = qr.parse_scan(settings, text, village=village, now=now)
    checkout = redemption.scan(
        db(),
        village=village,
        store=store,
        credential=credential,
        basket=basket,
        now=now,
        checkout_seconds=settings.checkout_seconds,
    )
    if isinstance(credential, CardRef):
        # A card is not single-use: the sale gets its own checkout code, spent on confirming.
        text = qr.sign(settings, checkout.nonce, prefix=qr.CHECKOUT_PREFIX)
    p = checkout.preview
    seconds = max(0, int((checkout.nonce.expires_at - now).total_seconds()))
    return render_template(
        "staff/counter_preview.html",
        village=village,
        store=store,
        goods=goods,
        preview=p,
        quantities={line.good_id: line.quantity for line in basket},
        priced=_basket_key(basket),
        checkout=text,
        seconds=seconds,
        method="户卡" if checkout.card else "手机码",
        proxy=request.form.get("proxy") == "1",
        proxy_note=request.form.get("proxy_note", ""),
    ), status


@bp.post("/redeem")
@signed_in
def redeem(code):
    """Confirm the priced basket: spend the points, take the goods off the shelf, once."""
    village = page_village(code, Role.CLERK)
    store, _stores = _store(village)
    goods = shop.list_goods(db(), store=store, active_only=True)
    text = request.form.get("checkout", "")
    try:
        basket = _form_basket(goods)
        if _basket_key(basket) != request.form.get("priced", "") or not basket:
            # The clerk changed a quantity after pricing: show the new total before spending.
            flash("请核对下面的合计，再点“确认兑换”" if basket else "请先填写商品数量", "error")
            return _preview(village, store, goods, text, basket)
        now = utcnow()
        ref = qr.read_token(token_settings(), text, village=village, now=now)
        receipt = redemption.redeem(
            db(),
            village=village,
            store=store,
            basket=basket,
            actor=current_actor(),
            now=now,
            nonce=ref,
            proxy=request.form.get("proxy") == "1",
            proxy_note=request.form.get("proxy_note", ""),
        )
    except PointsError as exc:
        db().rollback()
        flash(_message(exc, text), "error")
        return _back(village, store)
    audit_redemption(village, receipt)
    return redirect(url_for("counter.receipt", code=village.code, redemption_id=receipt.id))


@bp.get("/receipts/<int:redemption_id>")
@signed_in
def receipt(code, redemption_id):
    """A redemption's receipt, to show or print (小票)."""
    village = page_village(code, *SHOPKEEPERS)
    row = redemption.get_redemption(db(), village=village, redemption_id=redemption_id)
    return render_template(
        "staff/receipt.html",
        village=village,
        r=row,
        home=household_view(row.household),
        method=METHOD_NAMES.get(row.method, row.method),
    )


@bp.post("/orders/<int:order_id>/collect")
@signed_in
def collect(code, order_id):
    """Hand over an order placed from the counter code: its points are spent now, once."""
    village = page_village(code, Role.CLERK)
    try:
        receipt = orders.collect_order(
            db(),
            village=village,
            order_id=order_id,
            actor=current_actor(),
            now=utcnow(),
            proxy=request.form.get("proxy") == "1",
            proxy_note=request.form.get("proxy_note", ""),
        )
    except PointsError as exc:
        db().rollback()
        flash(exc.message, "error")
        return redirect(url_for("counter.home", code=village.code))
    audit_redemption(village, receipt)
    return redirect(url_for("counter.receipt", code=village.code, redemption_id=receipt.id))


@bp.post("/decode")
@signed_in
def decode(code):
    """Read a QR code in a camera frame (PNG/JPEG body) for the scan box: {"text": … or null}.

    The browser only grabs frames; zxing-cpp decodes them here, so no scanner library is
    shipped to the phone. The text goes through the same scan form as a USB scanner's.
    """
    page_village(code, Role.CLERK)
    text, error = decode_frame(request.get_data(cache=False))
    if error:
        return jsonify(text=None, error=error), 400
    return jsonify(text=text)


@bp.route("/stock", methods=["GET", "POST"])
@signed_in
def stock(code):
    """The store's shelves: stock of every good, the low-stock list, and goods received."""
    village = page_village(code, *SHOPKEEPERS)
    store, stores = _store(village)
    if request.method == "POST":
        form = request.form
        try:
            good = shop.get_good(db(), village=village, good_id=int(form.get("good_id") or 0))
            if good.store_id != store.id:
                raise ValidationError("该商品不属于这家商店")
            move = shop.move_stock(
                db(),
                good=good,
                kind=form.get("kind", ""),
                quantity=int(form.get("quantity") or 0),
                actor_id=current_actor().user_id,
                now=utcnow(),
                source=form.get("source", "").strip()[:100],
                note=form.get("note", "").strip()[:200],
            )
            page_audit(
                village,
                "stock.move",
                move,
                f"{good.name} 库存 {move.quantity:+d}（{form.get('kind')}），现有 {move.stock_after}",
                "stock_movement",
            )
            flash(f"{good.name} 库存 {move.quantity:+d}，现有 {move.stock_after}{good.unit}", "ok")
        except (PointsError, ValueError) as exc:
            db().rollback()
            flash(getattr(exc, "message", None) or "数量要填整数", "error")
        return redirect(url_for("counter.stock", code=village.code, store_id=store.id))
    return render_template(
        "staff/stock.html",
        village=village,
        store=store,
        stores=stores,
        goods=shop.list_goods(db(), store=store),
        low=shop.low_stock(db(), village=village, store=store),
        kinds=MOVE_KINDS,
    )
