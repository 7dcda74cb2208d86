"""Public pages, no sign-in: the notice board (公示栏) and the adopted rules (积分标准)."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.db import db
from points import catalog, notices, org, statements
from points.db import utcnow

bp = Blueprint("public", __name__, url_prefix="/public")


def notices_page(code):
    """Open notices and recent corrections; names as the village chose to publish them."""
    village = org.get_village(db(), code)
    items = notices.public_notices(db(), village=village, now=utcnow())
    return render_template("public/notices.html", village=village, items=items)


bp.add_url_rule("/<code>/notices", endpoint="notices", view_func=notices_page)


@bp.get("/<code>/rules")
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
