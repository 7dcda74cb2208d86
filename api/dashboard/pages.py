"""The admin's 工作台 (pending reviews, notices, objections, participation, points by category
and month, low stock) and the town view for supervisors (totals, no personal data)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template
from sqlalchemy import func, select

from api.db import db
from api.web.helpers import month_arg, page_village, signed_in
from api.web.identity import current_actor
from points import backups, catalog, claims
from points.db import utcnow
from points.ledger import statements
from points.models import Claim, Household, JournalEntry
from points.models.org import Role
from points.periods import local_date, month_key

bp = Blueprint("dashboard", __name__, template_folder="templates")


@bp.get("/v/<code>/")
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
    # Categories in the order of the village's catalogs (its own 乡风文明 included).
    order: list = []
    for scheme in statements.list_schemes(s, village=village):
        order += catalog.categories_of(catalog.adopted_version(s, scheme=scheme))
    months = {m: {c: cats[c] for c in catalog.ordered(cats, order)} for m, cats in months.items()}
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
        backup=_backup_status(village),
        village=village,
        counts=counts,
        months=list(months.items())[-6:],
        peak=peak,
        homes=homes,
        active=active,
        month=month,
        objections=claims.count_open_objections(s, village=village),
        low_stock=low_stock,
        # Board and period pages are the admin's: a reviewer is not shown links they cannot open.
        todo=_todo(village) if current_actor().has(village, Role.ADMIN) else [],
    )


def _backup_status(village):
    """For the village's admins: the last backup, and whether it is old or its folder missing.

    None where this server does not back itself up (PostgreSQL without POINTS_BACKUP_DIR: the
    operator's pg_dump and PITR do, docs/deploy.md)."""
    folder = current_app.config.get("BACKUP_DIR")
    if not folder or not current_actor().has(village, Role.ADMIN):
        return None
    return backups.backup_status(db(), folder=Path(folder), now=utcnow())


def _todo(village) -> list[tuple[str, str]]:
    """What needs doing beyond reviews and objections: boards to approve or publish, and a
    period closing within two weeks — as (text, page endpoint) for the admin."""
    from datetime import timedelta

    from points.boards import list_boards
    from points.cycles.preview import next_close
    from points.ledger.statements import list_schemes

    s, now = db(), utcnow()
    items = []
    for board in list_boards(s, village=village, public=False, limit=12):
        if board.status in ("draft", "approved"):
            state = "待审批" if board.status == "draft" else "已审批，待发布"
            items.append((f"{board.month} 红黑榜{state}", "board_pages.boards"))
    for scheme in list_schemes(s, village=village):
        preview = next_close(s, scheme=scheme, now=now)
        if preview.ends_at - now <= timedelta(days=14):
            days = max(0, (preview.ends_at - now).days)
            lost = f"，按目前余额将清零 {preview.points} 分" if preview.points else ""
            items.append(
                (f"{scheme.name} {preview.period} 还有 {days} 天结账{lost}", "cycle_pages.periods")
            )
    return items


def _low_stock(village):
    try:
        from points import shop
    except ImportError:  # the shop module is optional for this page
        return []
    finder = getattr(shop, "low_stock", None)
    return finder(db(), village=village) if finder else []


@bp.get("/town/<town>")
@signed_in
def summary(town):
    """Each village of my town: participation and totals this month (no personal data)."""
    from points.errors import PermissionDeniedError

    if town not in current_actor().towns():
        raise PermissionDeniedError("只有本镇督导员可以查看全镇汇总")
    this_month = month_key(local_date(utcnow()))
    month = month_arg(this_month)
    rows = statements.town_summary(db(), town=town, month=month)
    return render_template(
        "staff/town.html", town=town, month=month, this_month=this_month, rows=rows
    )
