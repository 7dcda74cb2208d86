"""The 积分标准: versions, import/export (Excel, YAML, JSON), diff, adoption and dry run through the
API and the `points catalog` commands; the public rules page."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.catalog import admin, pages, rest  # admin: the console routes of pages.bp
    from api.rest import api

    api.register_blueprint(rest.blp)
    assert admin.bp is pages.bp  # imported for its routes, registered with the blueprint
    app.register_blueprint(pages.bp)
