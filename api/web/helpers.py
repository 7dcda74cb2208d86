"""What every feature's pages use: the sign-in guard, village access, auditing a page's write,
the Chinese error page, the CSRF token, and the signed-in resident's household."""

from __future__ import annotations

import re
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
    req = request._get_current_object()  # resolved once: each use of the proxy costs a lookup
    if req.method != "POST" or req.path.startswith("/api/"):
        return None
    sent = req.form.get(CSRF_FIELD) or req.headers.get("X-CSRF-Token")
    if not sent or not secrets.compare_digest(sent, session.get(CSRF_FIELD, "")):
        return render_error(400, "页面已过期，请返回刷新后重新提交")
    return None


def localtime(value) -> str:
    """Show an aware datetime in Beijing time, as villagers read it."""
    from points.periods import LOCAL_TZ

    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if value else ""


# Every status a page may show, in the words a villager uses (never the stored English value).
STATUS_TEXT = {
    "draft": "草稿",
    "approved": "已审定",
    "published": "已发布",
    "withdrawn": "已撤回",
    "superseded": "已更正",
    "adopted": "已通过",
    "retired": "已停用",
    "pending_review": "待审核",
    "in_notice": "公示中",
    "posted": "已入账",
    "rejected": "未通过",
    "open": "进行中",
    "closed": "已结算",
    "upheld": "异议成立",
    "dismissed": "异议不成立",
}


def status_text(value) -> str:
    """Show a stored status in plain Chinese."""
    return STATUS_TEXT.get(str(value), str(value))


def template_globals():
    """Values every template sees: the CSRF token, the large-type setting, the signed-in actor."""
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


def render_error(status: int, message: str, headers=None):
    """Render a page-side error in plain Chinese."""
    back = request.referrer or ""
    back = back if back.startswith(request.host_url) and back != request.url else ""
    page = render_template("error.html", status=status, message=message, back=back)
    return page, status, headers or {}


PAGE_MESSAGES = {
    400: "提交的内容不正确，请返回上一页重新填写",
    401: "请先登录",
    403: "您没有权限打开这个页面",
    404: "找不到这个页面，可能地址输错了，或者内容已经不存在",
    405: "这个页面不能这样打开，请返回上一页重新进入",
    413: "提交的内容太大（照片每张不超过 5 MB）",
    429: "操作太频繁，请稍后再试",
    500: "系统出错了，请稍后再试",
}


def render_http_error(error):
    """Render an HTTP error (unknown page, wrong method, too many sign-ins…) as the Chinese page,
    keeping its status and headers such as Retry-After."""
    status = error.code or 500
    message = PAGE_MESSAGES.get(status, "出了点问题，请返回上一页重试")
    if error.description != type(error).description:  # raised with our own Chinese text
        message = error.description
    headers = {
        k: v for k, v in error.get_headers() if k.lower() not in ("content-type", "content-length")
    }
    if status == 429:
        minutes = _retry_minutes(error)
        if request.path.startswith("/login"):
            message = f"输错次数太多，请 {minutes} 分钟后再试；忘记 PIN 请到村委会重置"
        else:
            message = f"操作太频繁，请 {minutes} 分钟后再试"
        headers.setdefault("Retry-After", str(minutes * 60))
    return render_error(status, message, headers)


def _retry_minutes(error) -> int:
    """Whole minutes until a rate limit lets the user try again (at least 1)."""
    limit = getattr(getattr(error, "limit", None), "limit", None)
    seconds = limit.get_expiry() if limit is not None else 60
    return max(1, -(-int(seconds) // 60))


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
