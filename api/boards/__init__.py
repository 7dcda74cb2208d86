"""The monthly 红黑榜: drafts, approval, publication, appeals (API, `points board`), the admin page,
the public archive, posters (PDF) and sheets (xlsx)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.boards import pages, rest
    from api.rest import api

    api.register_blueprint(rest.blp)
    app.register_blueprint(pages.bp)
