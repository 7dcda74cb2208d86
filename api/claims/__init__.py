"""Claims: recording, declaring, review, 公示 and objections through the API and pages; evidence
photos; the anomaly report; the public notice board."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.claims import offline, pages, rest
    from api.rest import api

    api.register_blueprint(rest.blp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(offline.bp)
