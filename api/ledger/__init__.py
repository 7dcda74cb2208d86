"""Ledger reads: balances, scores, statements and the chain head (API), and the resident's own
points page."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.ledger import pages, rest
    from api.rest import api

    api.register_blueprint(rest.blp)
    app.register_blueprint(pages.bp)
