"""Delivery: the Flask app factory, API, pages, CLI and scheduler wiring."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "AUTO_MIGRATE": True,  # upgrade the schema at start-up (the embedded default)
    "JSON_AS_ASCII": False,
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app: defaults, then POINTS_* environment variables, then `config`."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("POINTS")
    if config:
        app.config.from_mapping(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'points.db'}"
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    app.json.ensure_ascii = False

    from api import (
        auth,
        boards,
        catalog,
        claims,
        cycles,
        dashboard,
        db,
        ledger,
        org,
        rest,
        shop,
        web,
    )
    from api.web import identity

    if not app.config.get("MAX_CONTENT_LENGTH"):
        app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024  # Flask defaults to unlimited
    app.before_request(_refuse_oversized)
    app.before_request(_refuse_nul)
    db.init_app(app)
    identity.init_app(app)
    rest.init_app(app)
    web.init_app(app)
    # Each feature registers its API blueprint and pages; this order is the OpenAPI order.
    for feature in (auth, org, ledger, catalog, claims, shop, boards, cycles, dashboard):
        feature.init_app(app)
    return app


def _refuse_oversized():
    """Refuse a body over MAX_CONTENT_LENGTH before anything reads it (JSON included)."""
    from flask import current_app, request
    from werkzeug.exceptions import RequestEntityTooLarge

    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def _refuse_nul():
    """Refuse text containing NUL characters: PostgreSQL cannot store them in text columns,
    and no honest form or client sends them. Uploaded files are not text and are not checked."""
    from flask import request
    from werkzeug.exceptions import BadRequest

    texts = list(request.args.values())
    if request.is_json:
        raw = request.get_data(cache=True)
        if b"\x00" in raw or b"\\u0000" in raw:
            raise BadRequest()
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        texts += list(request.form.values())
    if any("\x00" in t for t in texts):
        raise BadRequest()


def _instance_secret(instance: Path) -> str:
    """Return a secret key kept in the instance folder, created on first start."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        os.chmod(path, 0o600)
    return path.read_text().strip()
