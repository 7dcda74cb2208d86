"""Sign-in: staff by username and password, residents by phone and PIN; bearer tokens for the
API (stored hashed, expiring, revocable) and a session cookie for the pages."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import partial

from flask import Flask, current_app, g, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy import select, update

from api.db import db
from points import auth
from points.audit import record
from points.auth import check_password, hash_password
from points.db import utcnow
from points.errors import AuthenticationError, InvalidCredentialsError
from points.models import ApiToken, User
from points.org.access import Actor, SignedIn, find_signed_in
from points.org.operations import (
    VillageRow,
    find_signed_in_at_village,
    get_village_row,
    village_not_found,
)


class PointsLimiter(Limiter):
    """Flask-Limiter, minus its per-request passes on requests it has nothing to check.

    Its before-request pass applies application, default, blueprint and meta limits (and the
    in-memory fallback, and limits hinted for the endpoint); with none configured it finds
    nothing, at a cost of some 300 Python calls per request (issue 18). A limit on a view
    (sign-in) is checked by its decorator when the view runs, as before; configure any of those
    limits (e.g. POINTS_RATELIMIT_DEFAULT) and the pass runs on every request again.

    Its after-request hook (the X-RateLimit-* headers, conditional deductions) and teardown
    (clearing the request's limiter state) work only from what checking a limit recorded: they
    run on the requests that checked one, and are skipped on the others."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        after, teardown = app.after_request_funcs[None], app.teardown_request_funcs[None]
        for i, hook in enumerate(after):
            if isinstance(hook, partial) and hook.args == (self,):  # its header hook
                after[i] = _when_checked_after(hook)
        for i, hook in enumerate(teardown):
            if getattr(hook, "__self__", None) is self:  # its context release
                teardown[i] = _when_checked_teardown(hook)

    def _check_request_limit(self, callable_name=None, in_middleware=True):
        if in_middleware and self._nothing_before_request():
            return
        setattr(g, _LIMIT_CHECKED, True)
        super()._check_request_limit(callable_name, in_middleware)

    def _nothing_before_request(self) -> bool:
        manager = self.limit_manager
        return not (
            manager._application_limits
            or manager._default_limits
            or manager._blueprint_limits
            or self._meta_limits
            or self._storage_dead
            or manager.has_hints(request.endpoint or "")
        )


# Set in `g` by PointsLimiter when a request checks a limit; cleared at its teardown (g can
# outlive a request when an app context was pushed around it).
_LIMIT_CHECKED = "points_limit_checked"


def _when_checked_after(hook):
    def limit_headers(response):
        return hook(response) if _LIMIT_CHECKED in g else response

    return limit_headers


def _when_checked_teardown(hook):
    def release_limit_state(exc):
        if g.pop(_LIMIT_CHECKED, False):
            hook(exc)

    return release_limit_state


limiter = PointsLimiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
# Checked against when the username is unknown, so that both paths cost one scrypt.
_DUMMY_HASH = hash_password("timing-equaliser")


def init_app(app: Flask) -> None:
    """Configure cookies and the rate limiter (its storage shared across workers if set)."""
    app.config.setdefault("TOKEN_TTL_HOURS", 24 * 30)
    app.config.setdefault("SIGNIN_RATE_LIMIT", "10 per minute")
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config.setdefault("SIGNIN_MAX_FAILURES", auth.MAX_FAILURES)
    app.config.setdefault("SIGNIN_LOCK_MINUTES", auth.LOCK_MINUTES)
    limiter.init_app(app)


def signin_limit() -> str:
    """Return the configured sign-in rate limit (e.g. '10 per minute')."""
    return current_app.config["SIGNIN_RATE_LIMIT"]


def authenticate(*, username=None, password=None, phone=None, pin=None) -> User:
    """Return the active user matching the credentials; raise InvalidCredentialsError, or
    AccountLockedError once the account has had too many wrong tries (kept in the database,
    so the count holds across workers and servers)."""
    s = db()
    if username is not None:
        user = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
        secret, stored = password or "", user.password_hash if user else None
    elif phone is not None:
        user = s.execute(select(User).where(User.phone == phone)).scalar_one_or_none()
        secret, stored = pin or "", user.pin_hash if user else None
    else:
        raise InvalidCredentialsError()
    now = utcnow()
    if user is not None and stored is not None:
        auth.check_not_locked(user, now=now)
    ok = check_password(stored or _DUMMY_HASH, secret) and stored is not None
    if not ok and user is not None and stored is not None:
        _count_failure(user, now)
    if not ok or user is None or not user.active:
        raise InvalidCredentialsError()
    auth.record_good_signin(s, user=user)
    return user


def _count_failure(user: User, now) -> None:
    """Count a wrong secret and commit it now: the refusal rolls the request back, the count
    must stay. Raise AccountLockedError when this failure locks the account."""
    s = db()
    locked = auth.record_failed_signin(
        s,
        user=user,
        now=now,
        max_failures=current_app.config["SIGNIN_MAX_FAILURES"],
        lock_minutes=current_app.config["SIGNIN_LOCK_MINUTES"],
    )
    if locked:
        record(
            s,
            actor_id=None,
            village_id=None,
            action="auth.locked",
            object_type="user",
            object_id=user.id,
            summary="登录连续失败，账号暂时锁定",
            remote_addr=request.remote_addr,
            now=now,
        )
    s.commit()
    if locked:
        auth.check_not_locked(user, now=now)


def issue_token(user: User, *, name: str = "") -> tuple[str, ApiToken]:
    """Create a bearer token; the raw value is returned once and only its hash is kept."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(
        user_id=user.id,
        token_hash=_digest(raw),
        name=name[:100],
        created_at=now,
        expires_at=now + timedelta(hours=current_app.config["TOKEN_TTL_HOURS"]),
    )
    db().add(token)
    db().flush()
    return raw, token


def revoke_current_token() -> None:
    """Revoke the bearer token this request was made with."""
    token_id = g.get("api_token")
    if token_id is None:
        raise AuthenticationError("当前请求没有使用令牌")
    db().execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))


def current_user_id() -> int | None:
    """Return the signed-in user's id (bearer token, else page session), or None."""
    if "user_id" in g:
        return g.user_id
    g.user_id = None
    token_hash = _bearer_digest()
    # One statement finds the token, its user, the user's roles and resident link, as rows:
    # the actor is built from them without another round trip or any ORM object.
    if token_hash is not None:
        _accept_token(find_signed_in(db(), token_hash=token_hash))
    elif not request.path.startswith("/api/") and session.get("user_id"):
        found = find_signed_in(db(), user_id=session["user_id"])
        if found is not None and not auth.session_is_current(found, session.get("epoch")):
            # Signed out (here or elsewhere) or PIN reset since this sign-in: a copied
            # cookie is worth nothing.
            session.clear()
            found = None
        if found is not None:
            g.user_id, g.actor = found.actor.user_id, found.actor
    return g.user_id


def _accept_token(found: SignedIn | None) -> None:
    # A bearer token's user signs the request in unless the token is revoked or expired.
    if found is None or found.token_revoked_at is not None or found.token_expires_at <= utcnow():
        return
    g.api_token = found.token_id
    g.user_id, g.actor = found.actor.user_id, found.actor


def actor_and_village_row(code: str) -> tuple[Actor, VillageRow]:
    """The signed-in Actor and village `code` as plain values (`points.org.VillageRow`),
    refusing as `current_actor` (401) and then `get_village_row` (404) would. A request signed
    in by a bearer token and not yet looked at reads both in one statement (recording's first
    round trip); otherwise the actor as usual, then the village."""
    token_hash = None if "user_id" in g else _bearer_digest()
    if token_hash is None:
        return current_actor(), get_village_row(db(), code)
    g.user_id = None
    found, village = find_signed_in_at_village(db(), token_hash=token_hash, code=code)
    _accept_token(found)
    actor = current_actor()
    if village is None:
        raise village_not_found(code)
    return actor, village


def start_page_session(user: User) -> None:
    """Sign `user` in to the pages in this browser, under their current session epoch."""
    session.clear()
    session["user_id"] = user.id
    session["epoch"] = user.session_epoch
    session.permanent = True
    g.pop("user_id", None)
    g.pop("actor", None)


def end_page_session() -> None:
    """Sign out of the pages: this browser's cookie is cleared and every page session of the
    user, a copied cookie included, stops being honoured."""
    user_id = current_user_id()
    if user_id is not None and "api_token" not in g:
        auth.end_page_sessions(db(), user=db().get(User, user_id))
    session.clear()


def current_actor() -> Actor:
    """Return the signed-in Actor; raise AuthenticationError (401) when nobody is."""
    if "actor" in g:
        return g.actor
    if current_user_id() is None:
        raise AuthenticationError()
    return g.actor


def _bearer_digest() -> str | None:
    """The hash of this request's bearer token (as stored), or None without one."""
    header = request.headers.get("Authorization", "")
    return _digest(header[7:].strip()) if header.startswith("Bearer ") else None


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
