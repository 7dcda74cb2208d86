"""Honours pages: the 村两委 runs the year's 评星 and 表彰 (draft, nominate, approve, publish,
withdraw, appeals), the branch secretary records 民主评议; residents see and appeal their
household's honours; anyone reads published lists, the 道德模范 roll and a plaque's record;
the town sees counts. Plaques, certificates and posters are PDFs, the town's sheet Excel."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from api.db import db
from api.honours import files
from api.web.helpers import (
    form_errors,
    id_arg,
    localtime,
    my_household,
    page_audit,
    page_village,
    signed_in,
)
from api.web.identity import current_actor
from points import honours, org
from points.boards import party_scheme
from points.db import utcnow
from points.errors import NotFoundError, PermissionDeniedError, ValidationError
from points.models.honours import HonourAppeal, HonourKind
from points.models.org import Role
from points.periods import local_date

bp = Blueprint("honour_pages", __name__, template_folder="templates")

STAFF = (Role.ADMIN, Role.REVIEWER)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KINDS = [(k.value, honours.kind_text(k)) for k in HonourKind]


def _year(default: int | None = None) -> int:
    raw = request.values.get("year", "")
    if raw.isdigit() and 2000 <= int(raw) <= 9999:
        return int(raw)
    return default or local_date(utcnow()).year - 1


def _int(name: str) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ValidationError("请输入数字", errors={name: ["应为数字"]})
    return int(raw)


def _act(village, action: str) -> int | None:
    """Do one staff action from the form; return the list id to show next."""
    actor, form, now = current_actor(), request.form, utcnow()
    if action == "draft":
        period = (form.get("period") or "").strip()
        item = honours.draft_list(
            db(), village=village, kind=form.get("kind", ""), year=None if period else _year(),
            period=period, now=now, actor_id=actor.user_id,
        )  # fmt: skip
        page_audit(
            village,
            "honour.draft",
            item,
            f"起草{honours.when_text(item)}{honours.kind_text(item.kind)}",
            "honour_list",
        )
        return item.id
    if action == "cadence":
        cadence = form.get("cadence", "")
        scheme = honours.set_household_cadence(db(), village=village, actor=actor, cadence=cadence)
        page_audit(
            village,
            "honour.cadence",
            scheme,
            "星级文明户改为" + ("按积分周期评定" if cadence == "period" else "按年度评定"),
            "scheme",
        )
        return None
    if action == "resolve":
        appeal = db().get(HonourAppeal, _int("appeal_id") or 0)
        if appeal is None or appeal.village_id != village.id:
            raise NotFoundError("找不到该申诉")
        honours.resolve_appeal(
            db(), appeal=appeal, actor=actor, uphold=form.get("uphold") == "1",
            resolution=form.get("resolution", ""), stars=_int("stars"), now=now,
        )  # fmt: skip
        page_audit(village, "honour.appeal_resolve", appeal, "处理荣誉申诉", "honour_appeal")
        return appeal.correction_list_id or appeal.list_id
    item = honours.get_list(db(), village=village, list_id=_int("list_id") or 0)
    if action == "nominate":
        household, _, person = (form.get("who") or "").partition(":")
        if not (household.isdigit() and person.isdigit()):
            raise ValidationError("请选择受表彰的村民", errors={"who": ["不能为空"]})
        honours.nominate(
            db(), item=item, actor=actor, household_id=int(household),
            resident_id=int(person), title=form.get("title", ""),
            text=form.get("text", ""), consent_note=form.get("consent_note"),
        )  # fmt: skip
    elif action == "remove":
        honours.remove_entry(
            db(), item=item, actor=actor, entry_id=_int("entry_id") or 0,
            reason=form.get("reason", ""),
        )  # fmt: skip
    elif action == "redraft":
        honours.redraft_list(db(), item=item, now=now, actor_id=actor.user_id)
    elif action == "approve":
        honours.approve_list(db(), item=item, actor=actor, now=now)
    elif action == "publish":
        honours.publish_list(db(), item=item, actor=actor, now=now)
    elif action == "withdraw":
        honours.withdraw_list(db(), item=item, actor=actor, reason=form.get("reason", ""), now=now)
    else:
        raise ValidationError("不支持的操作")
    page_audit(
        village,
        f"honour.{action}",
        item,
        f"{honours.when_text(item)}{honours.kind_text(item.kind)}：{action}",
        "honour_list",
    )
    return item.id


@bp.route("/v/<code>/honours", methods=["GET", "POST"])
@signed_in
def manage(code):
    """评星与表彰 for the 村两委 and the review group: the year's lists and their appeals."""
    village = page_village(code, *STAFF)
    if request.method == "POST":
        shown = None
        with form_errors():
            shown = _act(village, request.form.get("action", ""))
            return redirect(url_for("honour_pages.manage", code=code, year=_year(), list=shown))
        return redirect(url_for("honour_pages.manage", code=code, year=_year()))
    year = _year()
    items = honours.list_lists(db(), village=village, public=False, year=year)
    chosen = id_arg("list") or (items[0].id if items else None)
    view = None
    if chosen:
        view = honours.staff_view(db(), honours.get_list(db(), village=village, list_id=chosen))
    household = honours.household_scheme(db(), village)
    people = []
    if view and view["status"] == "draft" and view["kind"] in ("awards", "models"):
        people = [
            p for p in org.list_residents(db(), village=village, actor=current_actor()) if p.active
        ]
    return render_template(
        "staff/honours.html",
        village=village,
        year=year,
        items=items,
        view=view,
        kinds=KINDS,
        people=people,
        appeals=honours.list_appeals(db(), village=village, status="open"),
        is_admin=current_actor().has(village, Role.ADMIN),
        titles=honours.TITLES,
        cadence=honours.household_cadence(household),
        period_example=honours.period_example(household),
    )


@bp.route("/v/<code>/honours/reviews", methods=["GET", "POST"])
@signed_in
def reviews(code):
    """民主评议: the branch secretary records each party member's score or grade for a year."""
    village = page_village(code, Role.ADMIN)
    year = _year()
    if request.method == "POST" and request.form.get("form") == "rules":
        with form_errors():
            _save_rules(village)
            flash("已保存党员星级合成规则，重新起草时生效", "ok")
        return redirect(url_for("honour_pages.reviews", code=code, year=year))
    if request.method == "POST":
        with form_errors():
            honours.record_review(
                db(), village=village, actor=current_actor(), resident_id=_int("resident_id") or 0,
                year=year, score=_int("score"), grade=request.form.get("grade") or None,
                now=utcnow(),
            )  # fmt: skip
            page_audit(
                village,
                "honour.review",
                _int("resident_id"),
                f"录入 {year} 年度民主评议",
                "resident",
            )
        return redirect(url_for("honour_pages.reviews", code=code, year=year))
    members, rules = honours.party_scores(db(), village, year)
    try:
        scheme = party_scheme(db(), village=village)
    except NotFoundError:
        scheme = None
    names = {p.id: p.name for p in org.list_residents(db(), village=village, actor=current_actor())}
    return render_template(
        "staff/honour_reviews.html", village=village, year=year, members=members, names=names,
        grades=honours.GRADES, reviews=honours.list_reviews(db(), village=village, year=year),
        rules=rules, scheme=scheme,
    )  # fmt: skip


def _save_rules(village) -> None:
    """Save the party scheme's combining rule from the 民主评议 page's form."""
    scheme = party_scheme(db(), village=village)
    caps = {}
    for grade in honours.GRADES:
        value = _int(f"cap_{grade}")
        if value is not None:
            caps[grade] = value
    rules = {
        key: _int(key)
        for key in ("party_weight", "review_weight", "award_top_n", "award_min_stars")
    }
    rules["grade_caps"] = caps
    honours.set_rules(db(), village=village, actor=current_actor(), scheme=scheme, rules=rules)
    page_audit(village, "honour.rules", scheme, f"修改党员星级合成规则：{rules}", "scheme")


def _published_entry(village, list_id: int, entry_id: int):
    item = honours.get_public_list(db(), village=village, list_id=list_id)
    if item.status == "withdrawn":
        raise NotFoundError("该名单已撤回")
    entry = next((e for e in item.snapshot["entries"] if e["id"] == entry_id), None)
    if entry is None:
        raise NotFoundError("找不到该名单条目")
    url = url_for("honour_pages.record", code=village.code, ref=entry["record"], _external=True)
    return item, entry, url


def _pdf(data: bytes, name: str) -> Response:
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@bp.get("/v/<code>/honours/<int:list_id>/entries/<int:entry_id>/plaque.pdf")
@signed_in
def plaque(code, list_id, entry_id):
    """A door plaque (A6, or A5 with ?size=a5) with a QR to the household's honour record."""
    village = page_village(code, Role.ADMIN)
    item, entry, url = _published_entry(village, list_id, entry_id)
    size = "a5" if request.args.get("size") == "a5" else "a6"
    when = honours.when_text(item)
    data = files.plaque_pdf(village.name, when, item.kind, entry, url, size=size)
    return _pdf(data, f"plaque-{village.code}-{item.year}-{entry_id}.pdf")


@bp.get("/v/<code>/honours/<int:list_id>/entries/<int:entry_id>/certificate.pdf")
@signed_in
def certificate(code, list_id, entry_id):
    """A 奖状 (A4) for one honoured household or person."""
    village = page_village(code, Role.ADMIN)
    item, entry, url = _published_entry(village, list_id, entry_id)
    when = localtime(item.published_at)[:10]
    data = files.certificate_pdf(village.name, honours.when_text(item), item.kind, entry, url, when)
    return _pdf(data, f"certificate-{village.code}-{item.year}-{entry_id}.pdf")


# --- residents -----------------------------------------------------------------------------------


@bp.route("/v/<code>/my/honours", methods=["GET", "POST"])
@signed_in
def mine(code):
    """My household's honours as published, and an appeal against one of them."""
    village = page_village(code, Role.RESIDENT)
    home = my_household(village)
    if request.method == "POST":
        with form_errors():
            item = honours.get_list(db(), village=village, list_id=_int("list_id") or 0)
            appeal = honours.appeal(
                db(), item=item, entry_id=_int("entry_id") or 0, actor=current_actor(),
                reason=request.form.get("reason", ""), now=utcnow(),
            )  # fmt: skip
            page_audit(village, "honour.appeal", appeal, "对荣誉名单提出申诉", "honour_appeal")
            flash("申诉已提交，评议小组会尽快处理", "ok")
        return redirect(url_for("honour_pages.mine", code=code))
    rows = honours.household_honours(db(), village=village, household_id=home.id)
    return render_template("resident/honours.html", village=village, home=home, rows=rows)


# --- public --------------------------------------------------------------------------------------


@bp.get("/public/<code>/honours")
def archive(code):
    """Every published honour list by year, with withdrawn and corrected ones marked."""
    village = org.get_village(db(), code)
    items = honours.list_lists(db(), village=village)
    return render_template("public/honours.html", village=village, items=items)


@bp.get("/public/<code>/honours/<int:list_id>")
def shown(code, list_id):
    """One list as published (a withdrawn one shows only its notice)."""
    village = org.get_village(db(), code)
    item = honours.get_public_list(db(), village=village, list_id=list_id)
    return render_template(
        "public/honour_list.html", village=village, item=item, view=honours.public_view(item)
    )


@bp.get("/public/<code>/honours/<int:list_id>/poster.pdf")
def poster(code, list_id):
    """A published list as an A4 poster with the ledger head."""
    village = org.get_village(db(), code)
    item = honours.get_public_list(db(), village=village, list_id=list_id)
    if item.status == "withdrawn":
        abort(404)
    data = files.list_poster(village.name, honours.public_view(item))
    return _pdf(data, f"honours-{village.code}-{item.period or item.year}-{item.kind}.pdf")


@bp.get("/public/<code>/honours/models")
def models(code):
    """The 道德模范 roll: honoured people by year (each agreed to be named)."""
    village = org.get_village(db(), code)
    return render_template(
        "public/honour_models.html", village=village, roll=honours.model_roll(db(), village=village)
    )


@bp.get("/public/<code>/honours/models/poster.pdf")
def models_poster(code):
    """The 道德模范 roll as a poster for the village board."""
    village = org.get_village(db(), code)
    data = files.roll_poster(village.name, honours.model_roll(db(), village=village))
    return _pdf(data, f"models-{village.code}.pdf")


@bp.get("/public/<code>/honours/record/<ref>")
def record(code, ref):
    """A household's public honour record: where a door plaque's QR leads."""
    village = org.get_village(db(), code)
    if len(ref) > 24:
        abort(404)
    rows = honours.public_record(db(), village=village, ref=ref)
    return render_template("public/honour_record.html", village=village, rows=rows)


# --- the town: counts only -----------------------------------------------------------------------


def _town(town: str):
    if town not in current_actor().towns():
        raise PermissionDeniedError("只有本镇督导员可以查看全镇汇总")


@bp.get("/town/<town>/honours")
@signed_in
def town(town):
    """Each village of my town: how many stars and honours it published (no names)."""
    _town(town)
    year = _year()
    rows = honours.town_counts(db(), town=town, year=year)
    return render_template("staff/honour_town.html", town=town, year=year, rows=rows)


@bp.get("/town/<town>/honours.xlsx")
@signed_in
def town_xlsx(town):
    """The town's honour counts as an Excel sheet."""
    _town(town)
    year = _year()
    data = files.town_xlsx(town, year, honours.town_counts(db(), town=town, year=year))
    response = Response(data, mimetype=XLSX)
    response.headers["Content-Disposition"] = f'attachment; filename="honours-{year}.xlsx"'
    return response
