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
        rules = [(row, catalog.rule_of(row)) for row in version.rules] if version else []
        books.append(
            {
                "scheme": scheme,
                "version": version,
                "rules": [
                    {"row": row, "features": catalog.rule_features(rule)} for row, rule in rules
                ],
                # Dated bonuses and dated items, with their dates, above the table.
                "campaigns": [rule for _, rule in rules if rule.campaign_from is not None],
            }
        )
    return render_template("public/rules.html", village=village, books=books)
