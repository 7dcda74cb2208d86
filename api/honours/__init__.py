"""Honours that last (星级文明户, 评星定级, 年度表彰, 道德模范): the 村两委's pages, 民主评议,
residents' honours and appeals, public lists and records, plaques, certificates and posters
(PDF), the town's counts (Excel)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.honours import pages, rest
    from api.rest import api
    from points.honours import kind_text

    api.register_blueprint(rest.blp)
    app.register_blueprint(pages.bp)
    app.jinja_env.filters["honour_kind"] = kind_text
