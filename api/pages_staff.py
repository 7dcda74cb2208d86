"""Staff pages: the dashboard, recording (grid workers, on a phone), the review queue and
objections, the audit log, the anomaly report, and the town view for supervisors."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from pypinyin import Style, lazy_pinyin
from sqlalchemy import func, select

from api.auth import current_actor
from api.db import db
from api.evidence import attach_photos
from api.pages import page_audit, page_village, signed_in
from points import audit as audit_log
from points import catalog, claims, org
from points.claims.anomalies import anomaly_report
from points.db import utcnow
from points.errors import PointsError
from points.ledger import statements
from points.models import CatalogRule, Claim, Household, JournalEntry, Objection
from points.models.claims import ClaimStatus, ObjectionStatus
from points.models.org import Role
from points.periods import local_date, month_key

bp = Blueprint("staff", __name__, url_prefix="/v/<code>")
town_bp = Blueprint("town", __name__, url_prefix="/town")
STAFF = (Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK)


def initials(name: str) -> str:
    """Return pinyin initials of a Chinese name (张建国 → zjg) for quick search."""
    return "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower()


@bp.get("/")
@signed_in
def dashboard(code):
    """The village at a glance: pending work, points by category and month, participation."""
    village = page_village(code, Role.ADMIN, Role.REVIEWER)
    s = db()
    counts = dict(
        s.execute(
            select(Claim.status, func.count())
            .where(Claim.village_id == village.id)
            .group_by(Claim.status)
        ).all()
    )
    by_month = s.execute(
        select(JournalEntry.month, JournalEntry.category, func.sum(JournalEntry.score_delta))
        .where(JournalEntry.village_id == village.id, JournalEntry.kind.in_(("award", "deduction")))
        .group_by(JournalEntry.month, JournalEntry.category)
        .order_by(JournalEntry.month)
    ).all()
    months: dict[str, dict[str, int]] = {}
    for month, category, total in by_month:
        months.setdefault(month, {})[category or "其他"] = int(total)
    peak = max((abs(v) for m in months.values() for v in m.values()), default=1) or 1
    homes = s.execute(
        select(func.count()).select_from(Household).where(Household.village_id == village.id)
    ).scalar_one()
    month = month_key(local_date(utcnow()))
    active = s.execute(
        select(func.count(func.distinct(JournalEntry.household_id))).where(
            JournalEntry.village_id == village.id,
            JournalEntry.month == month,
            JournalEntry.kind == "award",
        )
    ).scalar_one()
    low_stock = _low_stock(village)
    return render_template(
        "staff/dashboard.html",
        village=village,
        counts=counts,
        months=list(months.items())[-6:],
        peak=peak,
        homes=homes,
        active=active,
        month=month,
        objections=claims.count_open_objections(s, village=village),
        low_stock=low_stock,
    )


def _low_stock(village):
    try:
        from points import shop
    except ImportError:  # the shop module is optional for this page
        return []
    finder = getattr(shop, "low_stock", None)
    return finder(db(), village=village) if finder else []


@bp.route("/record", methods=["GET", "POST"])
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
            state = "待审核" if claim.status == ClaimStatus.PENDING_REVIEW else "已进入公示"
            flash(
                f"已登记 {claim.points:+d} 分，{state}"
                + (f"（{claim.cut_note}）" if claim.cut_note else ""),
                "ok",
            )
    except (PointsError, ValueError) as exc:
        db().rollback()
        flash(getattr(exc, "message", None) or "输入有误", "error")
    return redirect(url_for("staff.record", code=village.code))


@bp.route("/review", methods=["GET", "POST"])
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
        return redirect(url_for("staff.review", code=village.code))
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


@bp.get("/audit")
@signed_in
def audit(code):
    """The audit log, newest first."""
    village = page_village(code, Role.ADMIN)
    events = audit_log.list_events(db(), village=village, limit=300)
    return render_template("staff/audit.html", village=village, events=events)


@bp.get("/anomalies")
@signed_in
def anomalies(code):
    """The anomaly report for a month."""
    village = page_village(code, Role.ADMIN, Role.REVIEWER)
    month = request.args.get("month") or month_key(local_date(utcnow()))
    report = anomaly_report(db(), village=village, month=month)
    return render_template("staff/anomalies.html", village=village, report=report)


@town_bp.get("/<town>")
@signed_in
def summary(town):
    """Each village of my town: participation and totals this month (no personal data)."""
    from points.errors import PermissionDeniedError

    if town not in current_actor().towns():
        raise PermissionDeniedError("只有本镇督导员可以查看全镇汇总")
    month = request.args.get("month") or month_key(local_date(utcnow()))
    rows = statements.town_summary(db(), town=town, month=month)
    return render_template("staff/town.html", town=town, month=month, rows=rows)


@bp.route("/boards", methods=["GET", "POST"])
@signed_in
def boards(code):
    """红黑榜 for the admin: draft a month, remove entries with a reason, approve, publish."""
    from points import boards as board_domain

    village = page_village(code, Role.ADMIN)
    actor = current_actor()
    if request.method == "POST":
        form = request.form
        action = form.get("action")
        try:
            if action == "draft":
                board = board_domain.draft_board(
                    db(),
                    village=village,
                    month=form.get("month", ""),
                    now=utcnow(),
                    actor_id=actor.user_id,
                )
                page_audit(village, "board.draft", board, f"起草 {board.month} 红黑榜", "board")
            else:
                board = board_domain.get_board(
                    db(), village=village, board_id=int(form.get("board_id", 0))
                )
                if action == "remove":
                    board_domain.remove_entry(
                        db(),
                        board=board,
                        actor=actor,
                        entry_id=int(form.get("entry_id", 0)),
                        reason=form.get("reason", ""),
                    )
                elif action == "approve":
                    board_domain.approve_board(db(), board=board, actor=actor, now=utcnow())
                elif action == "publish":
                    board_domain.publish_board(db(), board=board, actor=actor, now=utcnow())
                elif action == "withdraw":
                    board_domain.withdraw_board(
                        db(), board=board, actor=actor, reason=form.get("reason", ""), now=utcnow()
                    )
                else:
                    raise PointsError("不支持的操作")
                page_audit(
                    village, f"board.{action}", board, f"{board.month} 红黑榜：{action}", "board"
                )
            flash(f"{board.month} 红黑榜已更新（{board.status}）", "ok")
            return redirect(url_for("staff.boards", code=village.code, board=board.id))
        except (PointsError, ValueError) as exc:
            db().rollback()
            flash(getattr(exc, "message", None) or "输入有误", "error")
            return redirect(url_for("staff.boards", code=village.code))
    items = board_domain.list_boards(db(), village=village, public=False)
    chosen = request.args.get("board", type=int) or (items[0].id if items else None)
    view = None
    if chosen:
        view = board_domain.staff_view(
            db(), board_domain.get_board(db(), village=village, board_id=chosen)
        )
    last_month = board_domain.month_shift(month_key(local_date(utcnow())), -1)
    return render_template(
        "staff/boards.html", village=village, items=items, view=view, last_month=last_month
    )
