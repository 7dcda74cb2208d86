"""Periods and scheduled work for operators: `points cycle status|close|statement`, period
statements as PDF and xlsx, and the periods page with statement and 台账 downloads."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's pages."""
    from api.cycles import pages

    app.register_blueprint(pages.bp)
