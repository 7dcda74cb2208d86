"""Server-rendered pages (Simplified Chinese) and the health endpoint."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, render_template
from sqlalchemy import func, select, text

from api.db import db
from points import ledger
from points.models import Household, Resident, Village

bp = Blueprint("pages", __name__)


def init_app(app: Flask) -> None:
    """Register the pages."""
    app.register_blueprint(bp)


@bp.get("/")
def home():
    """Show the villages this server keeps, with their ledger heads."""
    session = db()
    villages = session.execute(select(Village).order_by(Village.id)).scalars().all()
    rows = []
    for v in villages:
        households = session.execute(
            select(func.count()).select_from(Household).where(Household.village_id == v.id)
        ).scalar_one()
        residents = session.execute(
            select(func.count()).select_from(Resident).where(Resident.village_id == v.id)
        ).scalar_one()
        seq, head = ledger.chain_head(session, v.id)
        rows.append(
            {
                "village": v,
                "households": households,
                "residents": residents,
                "seq": seq,
                "head": head,
            }
        )
    return render_template("home.html", rows=rows)


@bp.get("/healthz")
def health():
    """Report that the app runs and its database answers."""
    db().execute(text("SELECT 1"))
    return jsonify(status="ok", database="ok")


def render_error(status: int, message: str):
    """Render a page-side error in plain Chinese."""
    return render_template("error.html", status=status, message=message), status
