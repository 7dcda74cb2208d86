"""Delivery: the Flask app factory, API, pages, CLI and scheduler wiring."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from types import FunctionType
from typing import Any

from flask import Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from werkzeug.sansio.utils import get_content_length

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "AUTO_MIGRATE": True,  # upgrade the schema at start-up (the embedded default)
    "JSON_AS_ASCII": False,
    "PROXY_FIX_HOPS": 0,  # reverse proxies in front (X-Forwarded-For/-Proto/-Host trusted)
}
# Keys Flask itself defines, so `from_mapping(DEFAULTS)` before Flask's own defaults would be
# fine but `config.setdefault` would not: they are set here unless the caller's config or a
# POINTS_* variable names them. SESSION_COOKIE_SECURE stays off by default (a LAN laptop
# serves plain HTTP); set POINTS_SESSION_COOKIE_SECURE=true behind HTTPS (docs/deploy.md).
SECURITY_DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
    "SESSION_COOKIE_SECURE": False,
}
# Response headers every page, API answer and file carries unless the view set its own.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then POINTS_* environment variables, then `config`."""
    app = PointsFlask(
        __name__,
        instance_relative_config=True,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("POINTS")
    if config:
        app.config.from_mapping(config)
    named = set(config or ()) | {k[7:] for k in os.environ if k.startswith("POINTS_")}
    for key, value in SECURITY_DEFAULTS.items():
        if key not in named:
            app.config[key] = value
    hops = int(app.config.get("PROXY_FIX_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    # Before any blueprint is registered: every <int:...> in a route refuses a number that
    # cannot be an id (404), instead of sending it to the database.
    app.url_map.converters["int"] = BoundedIntConverter
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'points.db'}"
    if not app.config.get("EVIDENCE_DIR"):
        app.config["EVIDENCE_DIR"] = str(Path(app.instance_path) / "evidence")
    # Whether the backup folder was chosen (a USB stick or share: never created by us).
    app.config["BACKUP_DIR_SET"] = bool(app.config.get("BACKUP_DIR"))
    if (
        not app.config.get("BACKUP_DIR")
        and app.config["DATABASE_URL"].startswith("sqlite")
        and not app.config.get("TESTING")
    ):
        # The embedded default backs itself up; set POINTS_BACKUP_DIR to a USB stick or share.
        # On PostgreSQL backups are the operator's pg_dump / PITR (docs/deploy.md) unless set.
        # (Tests name their own folder.)
        app.config["BACKUP_DIR"] = str(Path(app.instance_path) / "backups")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    app.json.ensure_ascii = False

    from api import (
        auth,
        backups,
        boards,
        catalog,
        claims,
        cycles,
        dashboard,
        db,
        events,
        honours,
        ledger,
        org,
        rest,
        shop,
        web,
    )
    from api.web import identity

    if not app.config.get("MAX_CONTENT_LENGTH"):
        app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024  # Flask defaults to unlimited
    app.before_request(_refuse_unsafe_input)
    app.after_request(_security_headers)
    db.init_app(app)
    identity.init_app(app)
    rest.init_app(app)
    web.init_app(app)
    # Each feature registers its API blueprint and pages; this order is the OpenAPI order.
    for feature in (
        auth,
        org,
        ledger,
        catalog,
        claims,
        shop,
        events,
        boards,
        honours,
        cycles,
        dashboard,
        backups,
    ):
        feature.init_app(app)
    return app


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; a request without a Cookie header (every API call with a
    bearer token) gets its empty session without building the signer or parsing cookies."""

    def open_session(self, app, request):
        if "HTTP_COOKIE" not in request.environ and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)


class PointsFlask(Flask):
    """Flask, with two costs of every request taken out of the hot path (issue 18)."""

    session_interface = CookieSessions()
    # Plain functions found synchronous, so hooks and views skip inspect's check each time.
    # Bound methods (a MethodView's handler is one per request) are not kept; the size cap
    # keeps a caller that makes functions per request from growing it without end.
    _SYNC_CACHE_MAX = 4096

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_functions: set = set()

    def ensure_sync(self, func):
        if func in self._sync_functions:
            return func
        result = super().ensure_sync(func)
        if (
            result is func
            and type(func) is FunctionType
            and len(self._sync_functions) < self._SYNC_CACHE_MAX
        ):
            self._sync_functions.add(func)
        return result


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` limited to what an id column holds (ids are 32-bit: points.db.intpk)."""

    def __init__(self, map, *args, **kwargs):  # werkzeug's signature
        from api.web.helpers import MAX_ID

        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


_SECURITY_HEADER_KEYS = {name.lower(): (name, value) for name, value in SECURITY_HEADERS.items()}
_ALL_SECURITY_HEADERS = tuple(_SECURITY_HEADER_KEYS.values())


def _security_headers(response):
    """No framing (clickjacking), no MIME sniffing, no full URLs leaked to other sites."""
    headers = response.headers
    present = {name.lower() for name, _ in headers}
    if present.isdisjoint(_SECURITY_HEADER_KEYS):
        # The usual case: all four appended at once to werkzeug's list of (name, value) pairs,
        # as `add` would (it only checks the values, ours, for newlines) at a third of the cost.
        headers._list.extend(_ALL_SECURITY_HEADERS)
        return response
    for key, (name, value) in _SECURITY_HEADER_KEYS.items():
        if key not in present:
            headers.add(name, value)
    return response


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_unsafe_input():
    """Refuse a body over MAX_CONTENT_LENGTH before anything reads it (413, JSON included), and
    text containing NUL characters (400): PostgreSQL cannot store them in text columns, and no
    honest form or client sends them. Uploaded files are not text and are not checked.

    The headers and query are read from the WSGI environ, not through the request's parsing
    properties: a typical API call (JSON body, no query) then costs a few lookups (issue 18)."""
    req = request._get_current_object()
    environ = req.environ
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit:
        length = get_content_length(
            environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING")
        )
        if (length or 0) > limit:
            raise RequestEntityTooLarge()
    query = environ.get("QUERY_STRING")
    # A decoded query value holds a NUL only if the raw query has one or "%00".
    texts = list(req.args.values()) if query and ("%00" in query or "\x00" in query) else []
    # request.mimetype, as werkzeug parses it from the Content-Type header.
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip(" \t").lower()
    if mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        raw = req.get_data(cache=True)
        if b"\x00" in raw or b"\\u0000" in raw:
            raise BadRequest()
    elif mimetype in _FORM_TYPES:
        texts += list(req.form.values())
    if any("\x00" in t for t in texts):
        raise BadRequest()


def _instance_secret(instance: Path) -> str:
    """Return a secret key kept in the instance folder, created on first start."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        os.chmod(path, 0o600)
    return path.read_text().strip()
