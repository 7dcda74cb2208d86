"""The admin's audit log page."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.db import db
from api.web.helpers import page_village, signed_in
from points import audit as audit_log
from points.models.org import Role

bp = Blueprint("org_pages", __name__, template_folder="templates")


@bp.get("/v/<code>/audit")
@signed_in
def audit(code):
    """The audit log, newest first."""
    village = page_village(code, Role.ADMIN)
    events = audit_log.list_events(db(), village=village, limit=300)
    return render_template("staff/audit.html", village=village, events=events)
