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
        books.append(
            {"scheme": scheme, "version": version, "rules": list(version.rules) if version else []}
        )
    return render_template("public/rules.html", village=village, books=books)
