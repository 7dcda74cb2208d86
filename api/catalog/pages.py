"""The public 积分标准 page: the catalog in force for each scheme."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.db import db
from points import catalog, org
from points.ledger import statements

bp = Blueprint("catalog_pages", __name__, template_folder="templates")


@bp.get("/public/<code>/rules")
def rules(code):
    """The catalog in force for each scheme, with the meeting that adopted it."""
    village = org.get_village(db(), code)
    books = []
    for scheme in statements.list_schemes(db(), village=village):
        version = catalog.adopted_version(db(), scheme=scheme)
        rules = list(version.rules) if version else []
        books.append({"scheme": scheme, "version": version, "groups": _groups(rules)})
    return render_template("public/rules.html", village=village, books=books)


def _groups(rules) -> list[dict]:
    """Items grouped as villagers look them up: 加分 then 扣分, by category and subcategory."""
    groups: dict[tuple, list] = {}
    for r in rules:
        key = (0 if r.sign > 0 else 1, r.category, r.subcategory or "")
        groups.setdefault(key, []).append(r)
    return [
        {
            "label": " · ".join(p for p in ("加分" if sign == 0 else "扣分", cat, sub) if p),
            "plus": sign == 0,
            "rules": items,
        }
        for (sign, cat, sub), items in sorted(groups.items(), key=lambda kv: kv[0][0])
    ]
