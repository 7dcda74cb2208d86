"""The admin's 工作台 and the town view for supervisors."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.dashboard import pages

    app.register_blueprint(pages.bp)
