"""What every feature's pages use: the sign-in guard, village access, auditing a page's write,
the Chinese error page, the CSRF token, and the signed-in resident's household."""

from __future__ import annotations

import re
import secrets
from functools import wraps

from flask import (
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from api.db import db
from api.web.identity import current_actor, current_user_id
from points import org
from points.audit import record
from points.db import utcnow
from points.errors import PointsError
from points.models import Village

CSRF_FIELD = "csrf_token"
# A month as pages and the API take it (ASCII digits, a real month), and the largest id.
MONTH_PATTERN = r"^[12][0-9]{3}-(0[1-9]|1[0-2])$"
MAX_ID = 2**31 - 1


def id_arg(name: str) -> int | None:
    """Return the query argument `name` as an id, or None when absent or not an id."""
    value = request.args.get(name, "")
    if not value.isascii() or not value.isdigit() or len(value) > 10 or int(value) > MAX_ID:
        return None
    return int(value)


def month_arg(default: str) -> str:
    """Return the `month` query argument (YYYY-MM), or `default` when absent; a malformed
    month is a 400 error page, not a crash."""
    from werkzeug.exceptions import BadRequest

    month = request.args.get("month") or default
    if not re.match(MONTH_PATTERN, month):
        raise BadRequest("月份格式应为 YYYY-MM")
    return month


def csrf_token() -> str:
    """Return this browser session's form token (created on first use)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(24)
    return session[CSRF_FIELD]


def check_csrf():
    """Refuse a page form posted without this session's CSRF token (before every request)."""
    # Pages post forms with the session cookie: each form carries the session's token. The API
    # uses bearer tokens, which a third-party page cannot send, so it needs no token.
    if request.method != "POST" or request.path.startswith("/api/"):
        return None
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token")
    if not sent or not secrets.compare_digest(sent, session.get(CSRF_FIELD, "")):
        return render_error(400, "页面已过期，请返回刷新后重新提交")
    return None


def localtime(value) -> str:
    """Show an aware datetime in Beijing time, as villagers read it."""
    from points.periods import LOCAL_TZ

    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if value else ""


def template_globals():
    """Values every template sees: the CSRF token, the large-type setting, the signed-in actor."""
    return {
        "csrf_token": csrf_token,
        "big_type": request.cookies.get("big") == "1",
        "me": g.get("page_actor"),
    }


def signed_in(fn):
    """Require a signed-in user for a page; send others to the sign-in page."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        if current_user_id() is None:
            return redirect(url_for("pages.login", next=request.full_path))
        g.page_actor = current_actor()
        return fn(*args, **kwargs)

    return wrapper


def page_village(code: str, *roles: str) -> Village:
    """Return the village after checking the signed-in actor holds one of `roles` there."""
    from points.org import get_village

    village = get_village(db(), code)
    current_actor().require(village, *roles)
    g.village = village
    return village


def page_audit(
    village: Village | None, action: str, obj, summary: str, object_type: str, **details
) -> None:
    """Record a page's write in the audit log, like the API does."""
    record(
        db(),
        actor_id=current_actor().user_id,
        village_id=village.id if village else None,
        action=action,
        object_type=object_type,
        object_id=getattr(obj, "id", obj),
        summary=summary,
        details=details or None,
        remote_addr=request.remote_addr,
        now=utcnow(),
    )


def render_error(status: int, message: str):
    """Render a page-side error in plain Chinese."""
    return render_template("error.html", status=status, message=message), status


def my_household(village):
    actor = current_actor()
    if actor.household_id is None:
        raise PointsError("您的账号没有关联农户，请联系村委会")
    return org.get_household(db(), village=village, household_id=actor.household_id)
