"""Claims in the browser: recording (grid workers, on a phone), the review queue and
objections, the anomaly report; a resident's declaration and objection; the public 公示栏."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from pypinyin import Style, lazy_pinyin
from sqlalchemy import select

from api.claims.evidence import attach_photos
from api.db import db
from api.web.helpers import my_household, page_audit, page_village, signed_in
from api.web.identity import current_actor
from points import catalog, claims, org
from points.claims import notices
from points.claims.anomalies import anomaly_report
from points.db import utcnow
from points.errors import PointsError
from points.ledger import statements
from points.models import CatalogRule, Claim, Household, Objection
from points.models.claims import Channel, ClaimStatus, ObjectionStatus
from points.models.org import Role
from points.periods import local_date, month_key

bp = Blueprint("claim_pages", __name__, template_folder="templates")


def initials(name: str) -> str:
    """Return pinyin initials of a Chinese name (张建国 → zjg) for quick search."""
    return "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower()


@bp.route("/v/<code>/record", methods=["GET", "POST"])
@signed_in
def record(code):
    """Record an act for one household or a whole event (grid workers: their own group)."""
    village = page_village(code, Role.ADMIN, Role.RECORDER)
    actor = current_actor()
    scheme = statements.get_scheme(
        db(), village=village, code=request.values.get("scheme", "household")
    )
    version = catalog.adopted_version(db(), scheme=scheme)
    rules = [
        r
        for r in (version.rules if version else [])
        if set(r.recorder_roles) & {"admin", "recorder"}
    ]
    q = (request.args.get("q") or "").strip().lower()
    homes, _ = org.list_households(db(), village=village, actor=actor, limit=2000)
    rows = []
    for home in homes:
        names = [m.name for m in home.members]
        if q and not (
            q in home.number.lower()
            or any(q in n for n in names)
            or any(initials(n).startswith(q) for n in names)
        ):
            continue
        rows.append({"home": home, "names": names})
    if request.method == "POST":
        return _record_post(village, scheme, actor)
    return render_template(
        "staff/record.html",
        village=village,
        scheme=scheme,
        rules=rules,
        rows=rows[:200],
        q=q,
        today=local_date(utcnow()).isoformat(),
    )


def _record_post(village, scheme, actor):
    form = request.form
    chosen = [int(h) for h in form.getlist("household_id") if h.isdigit()]
    try:
        occurred = date.fromisoformat(form.get("occurred_on") or "")
    except ValueError:
        flash("请填写正确的日期", "error")
        return redirect(request.full_path)
    try:
        qty = int(form.get("quantity") or 1)
        proposed = int(form["proposed_points"]) if form.get("proposed_points") else None
        if len(chosen) > 1 or form.get("title"):
            batch, items = claims.record_batch(
                db(),
                village=village,
                scheme=scheme,
                actor=actor,
                title=form.get("title") or "集体活动",
                rule_code=form.get("rule_code", ""),
                occurred_on=occurred,
                subjects=[(h, None) for h in chosen],
                now=utcnow(),
                quantity=qty,
                description=form.get("description", ""),
            )
            page_audit(
                village,
                "claim.batch",
                batch,
                f"批量登记“{batch.title}” {len(items)} 户",
                "claim_batch",
            )
            flash(f"已为 {len(items)} 户登记“{batch.title}”", "ok")
        else:
            photos = [f for f in request.files.getlist("photos") if f and f.filename]
            claim = claims.record(
                db(),
                village=village,
                scheme=scheme,
                actor=actor,
                now=utcnow(),
                item=claims.ClaimInput(
                    household_id=chosen[0] if chosen else 0,
                    rule_code=form.get("rule_code", ""),
                    occurred_on=occurred,
                    quantity=qty,
                    proposed_points=proposed,
                    description=form.get("description", ""),
                    has_evidence=bool(photos),
                ),
            )
            attach_photos(db(), claim, photos[:3])
            page_audit(village, "claim.record", claim, f"登记 {claim.points:+d} 分", "claim")
            state = {
                ClaimStatus.PENDING_REVIEW: "待审核",
                ClaimStatus.POSTED: "已入账（本项无需公示）",
            }.get(claim.status, "已进入公示")
            notes = [n for n in (claim.rule_note, claim.cut_note) if n]
            flash(
                f"已登记 {claim.points:+d} 分，{state}" + "".join(f"（{n}）" for n in notes),
                "ok",
            )
    except (PointsError, ValueError) as exc:
        db().rollback()
        flash(getattr(exc, "message", None) or "输入有误", "error")
    return redirect(url_for("claim_pages.record", code=village.code))


@bp.route("/v/<code>/review", methods=["GET", "POST"])
@signed_in
def review(code):
    """The review queue (评议) and open objections (异议)."""
    village = page_village(code, Role.ADMIN, Role.REVIEWER)
    actor = current_actor()
    if request.method == "POST":
        form = request.form
        try:
            if form.get("objection_id"):
                objection = db().get(Objection, int(form["objection_id"]))
                if objection is None or objection.village_id != village.id:
                    raise PointsError("找不到该异议")
                claims.resolve_objection(
                    db(),
                    objection=objection,
                    actor=actor,
                    uphold=form.get("decision") == "uphold",
                    note=form.get("note", ""),
                    now=utcnow(),
                )
                page_audit(village, "objection.resolve", objection, "处理异议", "objection")
                flash("异议已处理", "ok")
            else:
                claim = claims.get_claim(db(), village=village, claim_id=int(form["claim_id"]))
                if form.get("decision") == "approve":
                    claims.approve(
                        db(), claim=claim, actor=actor, now=utcnow(), note=form.get("note") or None
                    )
                    page_audit(village, "claim.approve", claim, "审核通过，进入公示", "claim")
                    flash(f"事项 #{claim.id} 已通过，进入公示", "ok")
                else:
                    claims.reject(
                        db(), claim=claim, actor=actor, now=utcnow(), reason=form.get("note", "")
                    )
                    page_audit(village, "claim.reject", claim, "驳回", "claim")
                    flash(f"事项 #{claim.id} 已驳回", "ok")
        except PointsError as exc:
            db().rollback()
            flash(exc.message, "error")
        return redirect(url_for("claim_pages.review", code=village.code))
    pending = claims.list_claims(
        db(), village=village, actor=actor, status=ClaimStatus.PENDING_REVIEW, limit=200
    )
    open_objections = (
        db()
        .execute(
            select(Objection)
            .where(Objection.village_id == village.id, Objection.status == ObjectionStatus.OPEN)
            .order_by(Objection.id)
        )
        .scalars()
        .all()
    )
    return render_template(
        "staff/review.html",
        village=village,
        pending=_describe(pending),
        objections=[(o, _describe([db().get(Claim, o.claim_id)])[0]) for o in open_objections],
    )


def _describe(items):
    """Attach the rule and household to claims for display."""
    out = []
    for c in items:
        home = db().get(Household, c.household_id)
        out.append(
            {
                "claim": c,
                "rule": db().get(CatalogRule, c.rule_id),
                "home": home,
                "names": "、".join(m.name for m in home.members[:3]),
            }
        )
    return out


@bp.get("/v/<code>/anomalies")
@signed_in
def anomalies(code):
    """The anomaly report for a month."""
    village = page_village(code, Role.ADMIN, Role.REVIEWER)
    month = request.args.get("month") or month_key(local_date(utcnow()))
    report = anomaly_report(db(), village=village, month=month)
    return render_template("staff/anomalies.html", village=village, report=report)


@bp.route("/v/<code>/my/declare", methods=["GET", "POST"])
@signed_in
def declare(code):
    """Declare a good deed of my household with up to three photos."""
    village = page_village(code, Role.RESIDENT)
    home = my_household(village)
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
            return redirect(url_for("ledger_pages.home", code=village.code))
        except (PointsError, ValueError) as exc:
            db().rollback()
            flash(getattr(exc, "message", None) or "请检查填写的内容", "error")
    return render_template(
        "resident/declare.html",
        village=village,
        rules=rules,
        today=local_date(utcnow()).isoformat(),
    )


@bp.route("/v/<code>/my/notices", methods=["GET", "POST"])
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
        return redirect(url_for("claim_pages.notices_page", code=village.code))
    items = [
        n
        for n in notices.public_notices(db(), village=village, now=utcnow())
        if n["kind"] == "notice"
    ]
    return render_template("resident/notices.html", village=village, items=items)


def public_notices(code):
    """Open notices and recent corrections; names as the village chose to publish them."""
    village = org.get_village(db(), code)
    items = notices.public_notices(db(), village=village, now=utcnow())
    return render_template("public/notices.html", village=village, items=items)


bp.add_url_rule("/public/<code>/notices", endpoint="public_notices", view_func=public_notices)
