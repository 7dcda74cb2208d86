"""The points shop: stores, goods, stock, redemption by QR code, orders and household cards through
the API, the clerk's counter pages, the resident's QR and shop pages, and `points cards`."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.rest import api
    from api.shop import admin, counter, pages, rest

    api.register_blueprint(rest.blp)
    app.register_blueprint(counter.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(admin.bp)
