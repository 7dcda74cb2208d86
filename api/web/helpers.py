"""What every feature's pages use: the sign-in guard, village access, auditing a page's write,
the Chinese error page, the CSRF token, and the signed-in resident's household."""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from functools import wraps

from flask import (
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from api.db import db
from api.web.identity import current_actor, current_user_id
from api.web.menus import menu
from points import org
from points.audit import record
from points.db import utcnow
from points.errors import PointsError
from points.models import Village

CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    """Return this browser session's form token (created on first use)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(24)
    return session[CSRF_FIELD]


def check_csrf():
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
    return {
        "csrf_token": csrf_token,
        "big_type": request.cookies.get("big") == "1",
        "me": g.get("page_actor"),
        "menu": menu,
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


@contextmanager
def form_errors(*also: type[Exception]):
    """Turn a refused form write into a flashed Chinese message with nothing written: the
    request's transaction is rolled back and the page continues (usually to a redirect)."""
    try:
        yield
    except (PointsError, *also) as exc:
        db().rollback()
        flash(getattr(exc, "message", None) or "输入有误，请检查后重新提交", "error")
