"""App-wide pages: sign-in and out, the 大字模式 toggle, the home page, and the health check."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select, text

from api.db import db
from api.web.helpers import signed_in
from api.web.identity import (
    authenticate,
    current_actor,
    current_user_id,
    end_page_session,
    limiter,
    signin_limit,
    start_page_session,
)
from points import ledger
from points.audit import record
from points.db import utcnow
from points.errors import AccountLockedError, InvalidCredentialsError
from points.models import Household, Resident, Village
from points.models.org import Role
from points.org.access import Actor

bp = Blueprint("pages", __name__)


def landing_for(actor: Actor) -> str:
    """Return the page a user lands on after signing in, by their main role."""
    roles = {grant.role for grant in actor.grants}
    village = _home_village(actor)
    if village is None:
        if Role.SUPERVISOR in roles and actor.towns():
            return url_for("dashboard.summary", town=sorted(actor.towns())[0])
        return url_for("pages.home")
    for role, endpoint in (
        (Role.ADMIN, "dashboard.dashboard"),
        (Role.REVIEWER, "claim_pages.review"),
        (Role.CLERK, "counter.home"),
        (Role.RECORDER, "claim_pages.record"),
    ):
        if role in roles:
            return url_for(endpoint, code=village.code)
    return url_for("ledger_pages.home", code=village.code)


def _home_village(actor: Actor) -> Village | None:
    ids = [grant.village_id for grant in actor.grants if grant.village_id] + (
        [actor.village_id] if actor.village_id else []
    )
    return db().get(Village, ids[0]) if ids else None


def safe_next(target: str | None) -> str | None:
    """Return `target` when it is a path on this site, else None (no open redirect).

    Browsers drop tabs and newlines and read a backslash as a slash, so `/<TAB>/evil.example`
    and `/\\evil.example` both mean `//evil.example`: anything but a plain absolute path with
    printable characters is refused.
    """
    if not target or not target.startswith("/") or len(target) > 2000:
        return None
    if "\\" in target or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    if target.startswith("//") or parts.scheme or parts.netloc:
        return None
    return target


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
        except AccountLockedError as locked:
            flash(locked.message, "error")
            return render_template("login.html", form=form), 429
        start_page_session(user)
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
        target = safe_next(request.args.get("next"))
        return redirect(target or landing_for(current_actor()))
    return render_template("login.html", form={})


@bp.post("/logout")
def logout():
    """Sign out of the pages, on every device this user signed in on."""
    end_page_session()
    return redirect(url_for("pages.login"))


@bp.get("/big-type")
def big_type():
    """Toggle large type for this browser (kept in a cookie)."""
    response = redirect(safe_next(request.args.get("next")) or "/")
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


@bp.get("/favicon.ico")
def favicon():
    """The site icon, for browsers that ask for it without reading the page."""
    from flask import current_app, send_from_directory

    return send_from_directory(
        current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )


@bp.get("/healthz")
def health():
    """Report that the app runs and its database answers."""
    db().execute(text("SELECT 1"))
    return jsonify(status="ok", database="ok")
