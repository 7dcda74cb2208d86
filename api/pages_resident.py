"""Resident pages (phone-first): my household's points and history, declaring a good deed
with a photo, and objecting to a notice during 公示."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for

from api.auth import current_actor
from api.db import db
from api.evidence import store_photo
from api.pages import page_audit, page_village, signed_in
from points import catalog, claims, notices, org, statements
from points.db import utcnow
from points.errors import PointsError
from points.models.claims import Channel, Evidence
from points.models.org import Role
from points.periods import local_date

bp = Blueprint("resident", __name__, url_prefix="/v/<code>/my")


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
            for upload in photos:
                name, ctype, size = store_photo(village.id, upload.read())
                db().add(
                    Evidence(
                        village_id=village.id,
                        claim_id=claim.id,
                        stored_name=name,
                        content_type=ctype,
                        size=size,
                        created_at=utcnow(),
                    )
                )
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
