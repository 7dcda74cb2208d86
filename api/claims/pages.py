"""Claims in the browser: recording (grid workers, on a phone), the review queue and
objections, the anomaly report; a resident's declaration and objection; the public 公示栏."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from pypinyin import Style, lazy_pinyin
from sqlalchemy import select

from api.claims.evidence import attach_photos, attach_stored, photo_path, store_uploads
from api.db import db
from api.web.helpers import month_arg, my_household, page_audit, page_village, signed_in
from api.web.identity import current_actor
from points import catalog, claims, org
from points.claims import notices
from points.claims.anomalies import anomaly_report
from points.db import utcnow
from points.errors import NotFoundError, PointsError
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
    if request.method == "POST":
        done = _record_post(village, scheme, actor)
        if done is not None:
            return done
        status = 422  # refused: show the same form again with everything still filled in
    else:
        status = 200
    homes, _ = org.list_households(db(), village=village, actor=actor, limit=2000)
    recent = claims.recent_rule_codes(db(), village=village, user_id=actor.user_id, scheme=scheme)
    form = request.form if request.method == "POST" else {}
    return render_template(
        "staff/record.html",
        village=village,
        scheme=scheme,
        rule_groups=rule_groups(rules, recent, staff=True),
        rows=[_row(home) for home in homes],
        chosen={int(h) for h in request.form.getlist("household_id") if h.isdigit()},
        form=form,
        member_required=scheme.subject_kind == "resident",
        today=local_date(utcnow()).isoformat(),
    ), status


def _row(home) -> dict:
    """A household as the record page lists it, with what the in-page search matches."""
    members = [m for m in home.members if m.active]
    names = [m.name for m in members]
    search = " ".join([home.number.lower(), *names, *(initials(n) for n in names)])
    return {"home": home, "names": names, "members": members, "search": search}


def rule_groups(rules, recent_codes=(), *, staff: bool) -> list[dict]:
    """Group catalog items for a dropdown: recently used first, then 加分 by category, then 扣分;
    each option says its points first and whether it needs a photo or review, never its code."""

    def option(r):
        if r.points:
            value = f"{r.sign * r.points:+d}"
        else:
            value = f"{'+' if r.sign > 0 else '-'}{r.min_points}–{r.max_points}"
        needs = []
        if r.evidence_required:
            needs.append("需附照片")
        if staff and (r.review == "always" or r.sign < 0):
            needs.append("需审核")
        elif staff and r.review == "threshold":
            needs.append(f"{r.review_threshold} 分及以上需审核")
        return {
            "code": r.code,
            "id": r.id,
            "label": f"({value}) {r.name}" + (f" · {'，'.join(needs)}" if needs else ""),
            "evidence": r.evidence_required,
            "review": bool(staff and (r.review != "never" or r.sign < 0)),
            "ranged": not r.points,
        }

    by_code = {r.code: r for r in rules}
    groups = []
    recent = [by_code[c] for c in recent_codes if c in by_code]
    if recent:
        groups.append({"label": "最近使用", "options": [option(r) for r in recent]})
    for sign, word in ((1, "加分"), (-1, "扣分")):
        seen: dict[str, list] = {}
        for r in rules:
            if r.sign == sign:
                seen.setdefault(r.subcategory or r.category, []).append(option(r))
        groups += [{"label": f"{word} · {k}", "options": v} for k, v in seen.items()]
    return groups


def _record_post(village, scheme, actor):
    """Record what the form holds; return a redirect when done, None when refused (flashed)."""
    form = request.form
    chosen = [int(h) for h in form.getlist("household_id") if h.isdigit()]
    photos = [f for f in request.files.getlist("photos") if f and f.filename][:3]
    try:
        try:
            occurred = date.fromisoformat(form.get("occurred_on") or "")
        except ValueError as exc:
            raise PointsError("请填写正确的日期") from exc
        if not chosen:
            raise PointsError("请至少选择一户")
        qty = int(form.get("quantity") or 1)
        proposed = int(form["proposed_points"]) if form.get("proposed_points") else None
        members = {h: _member(form, h) for h in chosen}
        if len(chosen) > 1 or form.get("title"):
            batch, items = claims.record_batch(
                db(),
                village=village,
                scheme=scheme,
                actor=actor,
                title=form.get("title") or "集体活动",
                rule_code=form.get("rule_code", ""),
                occurred_on=occurred,
                subjects=[(h, members[h]) for h in chosen],
                now=utcnow(),
                quantity=qty,
                proposed_points=proposed,
                description=form.get("description", ""),
                has_evidence=bool(photos),
            )
            stored = store_uploads(village.id, photos)
            for item in items:
                attach_stored(db(), item, stored, share=True)
            page_audit(
                village,
                "claim.batch",
                batch,
                f"批量登记“{batch.title}” {len(items)} 户，附照片 {len(photos)} 张",
                "claim_batch",
            )
            flash(f"已为 {len(items)} 户登记“{batch.title}”", "ok")
        else:
            claim = claims.record(
                db(),
                village=village,
                scheme=scheme,
                actor=actor,
                now=utcnow(),
                item=claims.ClaimInput(
                    household_id=chosen[0],
                    resident_id=members[chosen[0]],
                    rule_code=form.get("rule_code", ""),
                    occurred_on=occurred,
                    quantity=qty,
                    proposed_points=proposed,
                    description=form.get("description", ""),
                    has_evidence=bool(photos),
                ),
            )
            attach_photos(db(), claim, photos)
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
        flash(getattr(exc, "message", None) or "输入有误，请检查数量和分值", "error")
        return None
    return redirect(url_for("claim_pages.record", code=village.code, scheme=scheme.code))


def _member(form, household_id: int) -> int | None:
    """The member picked for a ticked household (empty: the household as a whole)."""
    value = form.get(f"member_{household_id}", "")
    return int(value) if value.isdigit() else None


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


@bp.get("/v/<code>/claims/<int:claim_id>/photos/<int:evidence_id>")
@signed_in
def photo(code, claim_id, evidence_id):
    """A claim's photo through the page session, for whoever may see the claim."""
    village = page_village(code, Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.RESIDENT)
    claim = claims.get_claim(db(), village=village, claim_id=claim_id)
    home = org.get_household(db(), village=village, household_id=claim.household_id)
    current_actor().require_household(village, home)
    item = next((e for e in claim.evidence if e.id == evidence_id), None)
    if item is None:
        raise NotFoundError("找不到该照片")
    response = send_file(photo_path(village.id, item.stored_name), mimetype=item.content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/v/<code>/anomalies")
@signed_in
def anomalies(code):
    """The anomaly report for a month."""
    village = page_village(code, Role.ADMIN, Role.REVIEWER)
    month = month_arg(month_key(local_date(utcnow())))
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
                    resident_id=int(form["resident_id"])
                    if form.get("resident_id", "").isdigit()
                    else None,
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
        rule_groups=rule_groups(
            rules,
            claims.recent_rule_codes(
                db(), village=village, user_id=current_actor().user_id, scheme=scheme
            ),
            staff=False,
        ),
        members=[m for m in home.members if m.active],
        form=request.form if request.method == "POST" else {},
        today=local_date(utcnow()).isoformat(),
    ), (422 if request.method == "POST" else 200)


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
    rows = [
        n
        for n in notices.notice_rows(db(), village=village, now=utcnow())
        if n["kind"] != "reversal"
    ]
    return render_template("resident/notices.html", village=village, rows=rows)


def public_notices(code):
    """Open notices and recent corrections; names as the village chose to publish them."""
    village = org.get_village(db(), code)
    rows = notices.notice_rows(db(), village=village, now=utcnow())
    return render_template("public/notices.html", village=village, rows=rows)


bp.add_url_rule("/public/<code>/notices", endpoint="public_notices", view_func=public_notices)
