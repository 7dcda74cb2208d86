"""My household's points: what I can spend, this period's score, every entry with its reason."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.db import db
from api.web.helpers import my_household, page_village, signed_in
from api.web.identity import current_actor
from points import boards, claims, honours
from points.db import utcnow
from points.errors import NotFoundError
from points.ledger import statements
from points.models.org import Role

bp = Blueprint("ledger_pages", __name__, template_folder="templates")


@bp.get("/v/<code>/my/")
@signed_in
def home(code):
    """My household: points I can spend, this period's score, and every entry with its reason."""
    village = page_village(code, Role.RESIDENT)
    home = my_household(village)
    scheme = statements.get_scheme(db(), village=village, code="household")
    balance = statements.balance_view(db(), scheme=scheme, subject_id=home.id, now=utcnow())
    lines = statements.subject_lines(db(), scheme=scheme, subject_id=home.id, limit=100)
    mine = claims.list_claims(db(), village=village, actor=current_actor(), limit=20)
    return render_template(
        "resident/home.html",
        village=village,
        home=home,
        balance=balance,
        short=max(0, scheme.redemption_threshold - balance["score"]) if scheme.redeemable else 0,
        lines=lines,
        claims=[c for c in mine if c.status != "posted"],
        party=_my_party(village),
        honours=honours.household_honours(db(), village=village, household_id=home.id)[:6],
    )


def _my_party(village):
    """The signed-in member's party standing, or None when they are not a party member."""
    actor = current_actor()
    try:
        return boards.member_standing(
            db(),
            village=village,
            resident_id=actor.resident_id,
            actor=actor,
            now=utcnow(),
            limit=30,
        )
    except NotFoundError:
        return None
