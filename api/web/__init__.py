"""App-wide page plumbing that every feature's pages use and that uses no feature: who is signed
in (identity), sign-in and home pages (pages), the sign-in guard, CSRF, the error page and the
base templates (helpers, templates/), and static files (static/)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the app-wide pages, the CSRF check on forms and the template helpers."""
    from api.web import helpers, pages
    from points.periods import period_label

    app.register_blueprint(pages.bp)
    app.before_request(helpers.check_csrf)
    app.context_processor(helpers.template_globals)
    app.jinja_env.filters["localtime"] = helpers.localtime
    app.jinja_env.filters["status_text"] = helpers.status_text
    app.jinja_env.filters["period"] = period_label
