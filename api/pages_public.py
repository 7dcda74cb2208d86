"""Public pages, no sign-in: the notice board (公示栏) and the adopted rules (积分标准)."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.db import db
from points import catalog, org
from points.claims import notices
from points.db import utcnow
from points.ledger import statements

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


@bp.get("/<code>/boards")
def boards_archive(code):
    """Every board published so far, with withdrawn and corrected ones marked."""
    from points import boards

    village = org.get_village(db(), code)
    items = boards.list_boards(db(), village=village)
    return render_template("public/boards.html", village=village, items=items)


@bp.get("/<code>/board/<month>")
def board(code, month):
    """A month's board as published, laid out to print on A4 or A3 in large type."""
    from flask import abort, request

    from points import boards

    village = org.get_village(db(), code)
    wanted = request.args.get("id", type=int)
    shown = (
        boards.get_public_board(db(), village=village, board_id=wanted)
        if wanted
        else boards.month_board(db(), village=village, month=month)
    )
    if shown is None or shown.month != month:
        abort(404)
    return render_template(
        "public/board.html",
        village=village,
        board=shown,
        view=boards.public_view(shown),
        privacy=boards.privacy_label(shown.privacy_mode),
        size="a3" if request.args.get("size") == "a3" else "a4",
    )
