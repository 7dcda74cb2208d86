"""The 村两委's shop pages: stores and goods (price, unit, per-household limit, on/off the
shelf), the donors' thank-you list, and household cards (print for all or some households,
report one lost and reissue it: the old serial is refused at once)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from api.db import db
from api.shop import photos
from api.shop.cards_pdf import sheet_for
from api.web.helpers import form_errors, page_audit, page_village, render_error, signed_in
from api.web.identity import current_actor
from points import org, shop
from points.db import utcnow
from points.errors import ValidationError
from points.models.org import Role
from points.shop import credentials
from points.shop.goods import list_donations

bp = Blueprint("shop_admin", __name__, template_folder="templates")


def _number(form, key: str, *, required: bool = True) -> int | None:
    value = form.get(key, "").strip()
    if not value and not required:
        return None
    if not value.isdigit():
        raise ValidationError("请填写整数", errors={key: ["应为整数"]})
    return int(value)


@bp.route("/v/<code>/shop/goods", methods=["GET", "POST"])
@signed_in
def goods(code):
    """Stores and their goods; open a store, put a good on the shelf, change or take it off."""
    village = page_village(code, Role.ADMIN)
    s, form = db(), request.form
    if request.method == "POST":
        with form_errors():
            action = form.get("action")
            if action == "store":
                store = shop.create_store(
                    s,
                    village=village,
                    name=form.get("name", ""),
                    now=utcnow(),
                    address=form.get("address", ""),
                )
                page_audit(village, "store.create", store, f"开设商店 {store.name}", "store")
                flash(f"已开设商店“{store.name}”", "ok")
            elif action == "good":
                store = shop.get_store(s, village=village, store_id=_number(form, "store_id"))
                good = shop.create_good(
                    s,
                    store=store,
                    name=form.get("name", ""),
                    price=_number(form, "price"),
                    unit=form.get("unit", "件"),
                    limit_per_period=_number(form, "limit_per_period", required=False),
                    now=utcnow(),
                )
                _attach_photo(village, good)
                page_audit(
                    village, "good.create", good, f"上架商品 {good.name}（{good.price} 分）", "good"
                )
                flash(f"已添加商品“{good.name}”，请到“库存”页登记入库或捐赠", "ok")
            elif action == "edit":
                good = shop.get_good(s, village=village, good_id=_number(form, "good_id"))
                shop.update_good(
                    s,
                    good=good,
                    name=form.get("name", good.name),
                    price=_number(form, "price"),
                    unit=form.get("unit", good.unit),
                    limit_per_period=_number(form, "limit_per_period", required=False),
                    active=form.get("active") == "1",
                )
                _attach_photo(village, good)
                state = "在架" if good.active else "下架"
                page_audit(
                    village,
                    "good.update",
                    good,
                    f"修改商品 {good.name}（{good.price} 分，{state}）",
                    "good",
                )
                flash(f"已保存“{good.name}”", "ok")
            else:
                raise ValidationError("不支持的操作")
        return redirect(url_for("shop_admin.goods", code=code))
    stores = shop.list_stores(s, village=village)
    shelves = [(store, shop.list_goods(s, store=store)) for store in stores]
    names = {g.id: g.name for _st, gs in shelves for g in gs}
    donations = list_donations(s, village=village)
    return render_template(
        "staff/shop_goods.html", village=village, shelves=shelves, donations=donations, names=names
    )


def _attach_photo(village, good) -> None:
    sent = request.files.get("photo")
    if sent is not None and sent.filename:
        shop.update_good(db(), good=good, photo=photos.store_photo(village.id, sent.read()))


@bp.get("/shop/<code>/goods/<int:good_id>/photo")
def photo(code, good_id):
    """A good's photo (public: goods are on the shelf for everyone to see)."""
    village = org.get_village(db(), code)
    good = shop.get_good(db(), village=village, good_id=good_id)
    if not good.photo:
        return render_error(404, "该商品没有照片")
    path = photos.photo_path(village.id, good.photo)
    if not path.exists():
        return render_error(404, "该商品没有照片")
    return send_file(path, mimetype="image/jpeg", max_age=3600)


@bp.route("/v/<code>/shop/cards", methods=["GET", "POST"])
@signed_in
def cards(code):
    """Household cards: print them (all or ticked households), report one lost and reissue."""
    village = page_village(code, Role.ADMIN)
    s, actor_id, now = db(), current_actor().user_id, utcnow()
    if request.method == "POST":
        form = request.form
        action = form.get("action")
        chosen = [int(h) for h in form.getlist("household_id") if h.isdigit()]
        with form_errors():
            if action == "lost":
                card = credentials.revoke_card(
                    s,
                    village=village,
                    card_id=_number(form, "card_id"),
                    actor_id=actor_id,
                    reason=form.get("reason", "").strip() or "遗失",
                    now=now,
                )
                home = org.get_household(s, village=village, household_id=card.household_id)
                new = credentials.issue_card(
                    s, village=village, household=home, actor_id=actor_id, now=now
                )
                page_audit(
                    village,
                    "card.reissue",
                    new,
                    f"农户 {home.number} 户卡挂失补办（旧卡 {card.serial} 作废）",
                    "household_card",
                    revoked=card.id,
                )
                printed = [new]
            else:
                if action != "all" and not chosen:
                    raise ValidationError("请勾选要打印户卡的农户，或选“打印全部”")
                printed, issued = credentials.ensure_cards(
                    s,
                    village=village,
                    actor_id=actor_id,
                    now=now,
                    household_ids=None if action == "all" else chosen,
                )
                page_audit(
                    village,
                    "card.print",
                    village,
                    f"打印户卡 {len(printed)} 张（新发 {issued} 张）",
                    "village",
                )
            if not printed:
                return render_error(404, "没有可打印的户卡")
            response = Response(sheet_for(s, village, printed), mimetype="application/pdf")
            response.headers["Content-Disposition"] = (
                f"attachment; filename={village.code}-cards.pdf"
            )
            return response
        return redirect(url_for("shop_admin.cards", code=code))
    homes, _total = org.list_households(s, village=village, actor=current_actor(), limit=2000)
    live = {c.household_id: c for c in credentials.list_cards(s, village=village)}
    return render_template(
        "staff/shop_cards.html",
        village=village,
        homes=homes,
        live=live,
        fmt=credentials.format_serial,
    )
