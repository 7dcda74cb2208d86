"""The public 积分标准 page: the catalog in force for each scheme."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.db import db
from points import catalog, org
from points.db import utcnow
from points.effective import announced_changes
from points.ledger import statements
from points.periods import local_date

bp = Blueprint("catalog_pages", __name__, template_folder="templates")


@bp.get("/public/<code>/rules")
def rules(code):
    """The catalog in force for each scheme, with the meeting that adopted it."""
    village = org.get_village(db(), code)
    books = []
    for scheme in statements.list_schemes(db(), village=village):
        version = catalog.adopted_version(db(), scheme=scheme)
        rows = list(version.rules) if version else []
        rules = [(row, catalog.rule_of(row)) for row in rows]
        categories = catalog.categories_of(version)
        books.append(
            {
                "scheme": scheme,
                "version": version,
                # The catalog's own categories, in its order (a village's 乡风文明 included).
                "categories": categories,
                "groups": _groups(rows, categories),
                # What each item's plain numbers do not say (once only, repeats, campaigns…).
                "features": {row.id: catalog.rule_features(rule) for row, rule in rules},
                # Dated bonuses and dated items, with their dates, above the items.
                "campaigns": [rule for _, rule in rules if rule.campaign_from is not None],
            }
        )
    schemes = [b["scheme"] for b in books]
    upcoming = announced_changes(db(), village=village, schemes=schemes, today=local_date(utcnow()))
    return render_template(
        "public/rules.html",
        village=village,
        books=books,
        terms=_public_terms(village),
        upcoming=upcoming,
    )


def _groups(rules, categories) -> list[dict]:
    """Items grouped as villagers look them up: 加分 then 扣分, by category in the catalog's
    order, then subcategory in the order the items come."""
    order = {c.name: n for n, c in enumerate(categories)}
    groups: dict[tuple, list] = {}
    for r in rules:
        key = (0 if r.sign > 0 else 1, r.category, r.subcategory or "")
        groups.setdefault(key, []).append(r)
    ranked = sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], len(order))))
    return [
        {
            "label": " · ".join(p for p in ("加分" if sign == 0 else "扣分", cat, sub) if p),
            "plus": sign == 0,
            "rules": items,
        }
        for (sign, cat, sub), items in ranked
    ]


def _public_terms(village) -> list[str]:
    """The settings residents are bound by, in plain words (set on the 方案设置 page)."""
    from points.boards import DEFAULT_STARS
    from points.catalog.settings import CLOSE_POLICY_TEXT
    from points.org.settings import PRIVACY_TEXT
    from points.shop import redemption

    lines = []
    for scheme in statements.list_schemes(db(), village=village):
        policy = CLOSE_POLICY_TEXT.get(scheme.close_policy, scheme.close_policy)
        if scheme.expire_after_n:
            policy = policy.replace("n 期", f"{scheme.expire_after_n} 期")
        parts = [f"公示 {scheme.notice_days} 天", f"期末{policy}"]
        if scheme.base_score:
            parts.append(f"每期基础分 {scheme.base_score} 分（不可兑换）")
        stars = scheme.star_thresholds or DEFAULT_STARS
        parts.append("星级：" + "、".join(f"{n}星 {t} 分" for n, t in enumerate(stars, 1)))
        if scheme.redeemable:
            window = redemption.get_window(db(), scheme=scheme, now=utcnow())
            parts.insert(0, f"本期得分满 {scheme.redemption_threshold} 分可兑换")
            parts.insert(1, window.describe())
        lines.append(f"{scheme.name}：" + "；".join(parts))
    lines.append(
        f"红黑榜：{PRIVACY_TEXT.get(village.privacy_mode, village.privacy_mode)}，"
        f"黑榜公布 {village.black_months} 个月，红榜前 {village.board_top_n} 名"
    )
    return lines
