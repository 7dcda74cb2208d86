"""Sign-in through the API: bearer tokens and the signed-in user."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.auth import rest
    from api.rest import api

    api.register_blueprint(rest.blp)
