"""Server-rendered pages (Simplified Chinese): sign-in, the home page, shared page helpers, and
the health endpoint. Role pages live in pages_*.py and use the helpers here."""

from __future__ import annotations

import secrets
from functools import wraps

from flask import (
    Blueprint,
    Flask,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import func, select, text

from api.auth import authenticate, current_actor, current_user_id, limiter, signin_limit
from api.db import db
from points import ledger
from points.audit import record
from points.db import utcnow
from points.errors import InvalidCredentialsError
from points.models import Household, Resident, Village
from points.models.org import Role
from points.org.access import Actor

bp = Blueprint("pages", __name__)
CSRF_FIELD = "csrf_token"


def init_app(app: Flask) -> None:
    """Register the pages, the CSRF check on forms and the template helpers."""
    app.register_blueprint(bp)
    app.before_request(_check_csrf)
    app.context_processor(_template_globals)
    from api import pages_counter, pages_public, pages_resident, pages_staff

    for module in (pages_public, pages_staff, pages_counter, pages_resident):
        app.register_blueprint(module.bp)
    app.register_blueprint(pages_staff.town_bp)
    app.register_blueprint(pages_resident.counter_code_bp)
    app.jinja_env.filters["localtime"] = _localtime


# --- helpers shared by every page module --------------------------------------------------------


def csrf_token() -> str:
    """Return this browser session's form token (created on first use)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(24)
    return session[CSRF_FIELD]


def _check_csrf():
    # Pages post forms with the session cookie: each form carries the session's token. The API
    # uses bearer tokens, which a third-party page cannot send, so it needs no token.
    if request.method != "POST" or request.path.startswith("/api/"):
        return None
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token")
    if not sent or not secrets.compare_digest(sent, session.get(CSRF_FIELD, "")):
        return render_error(400, "页面已过期，请返回刷新后重新提交")
    return None


def _localtime(value) -> str:
    """Show an aware datetime in Beijing time, as villagers read it."""
    from points.periods import LOCAL_TZ

    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if value else ""


def _template_globals():
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


def landing_for(actor: Actor) -> str:
    """Return the page a user lands on after signing in, by their main role."""
    roles = {grant.role for grant in actor.grants}
    village = _home_village(actor)
    if village is None:
        if Role.SUPERVISOR in roles and actor.towns():
            return url_for("town.summary", town=sorted(actor.towns())[0])
        return url_for("pages.home")
    for role, endpoint in (
        (Role.ADMIN, "staff.dashboard"),
        (Role.REVIEWER, "staff.review"),
        (Role.CLERK, "counter.home"),
        (Role.RECORDER, "staff.record"),
    ):
        if role in roles:
            return url_for(endpoint, code=village.code)
    return url_for("resident.home", code=village.code)


def _home_village(actor: Actor) -> Village | None:
    ids = [grant.village_id for grant in actor.grants if grant.village_id] + (
        [actor.village_id] if actor.village_id else []
    )
    return db().get(Village, ids[0]) if ids else None


# --- sign-in, home, health ----------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(signin_limit, methods=["POST"])
def login():
    """Sign in: staff with username and password, residents with phone and PIN."""
    if request.method == "POST":
        form = request.form
        try:
            if form.get("phone"):
                user = authenticate(phone=form["phone"].strip(), pin=form.get("pin", ""))
            else:
                user = authenticate(
                    username=form.get("username", "").strip(), password=form.get("password", "")
                )
        except InvalidCredentialsError:
            flash("账号或密码错误，请重新输入", "error")
            return render_template("login.html", form=form), 401
        session.clear()
        session["user_id"] = user.id
        session.permanent = True
        record(
            db(),
            actor_id=user.id,
            village_id=None,
            action="auth.signin.page",
            object_type="user",
            object_id=user.id,
            summary="网页登录",
            remote_addr=request.remote_addr,
            now=utcnow(),
        )
        g.pop("user_id", None)
        g.pop("actor", None)
        target = request.args.get("next") or ""
        if not target.startswith("/") or target.startswith("//"):
            target = ""
        return redirect(target or landing_for(current_actor()))
    return render_template("login.html", form={})


@bp.post("/logout")
def logout():
    """Sign out of the pages."""
    session.clear()
    return redirect(url_for("pages.login"))


@bp.get("/big-type")
def big_type():
    """Toggle large type for this browser (kept in a cookie)."""
    target = request.args.get("next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    response = redirect(target)
    response.set_cookie(
        "big",
        "0" if request.cookies.get("big") == "1" else "1",
        max_age=3600 * 24 * 365,
        samesite="Lax",
    )
    return response


@bp.get("/")
def home():
    """Show the villages this server keeps, with their ledger heads and public links."""
    if current_user_id() is not None:
        g.page_actor = current_actor()
    s = db()
    rows = []
    for v in s.execute(select(Village).order_by(Village.id)).scalars():
        households = s.execute(
            select(func.count()).select_from(Household).where(Household.village_id == v.id)
        ).scalar_one()
        residents = s.execute(
            select(func.count()).select_from(Resident).where(Resident.village_id == v.id)
        ).scalar_one()
        seq, head = ledger.chain_head(s, v.id)
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


@bp.get("/me")
@signed_in
def me():
    """Send a signed-in user to their own start page."""
    return redirect(landing_for(current_actor()))


@bp.get("/healthz")
def health():
    """Report that the app runs and its database answers."""
    db().execute(text("SELECT 1"))
    return jsonify(status="ok", database="ok")
