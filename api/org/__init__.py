"""Villages, groups, households, residents and staff users: the REST API, the `points village|user|roster`
commands, roster files (花名册) and the audit log page."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.org import accounts, pages, rest  # accounts: routes of pages.bp
    from api.rest import api

    api.register_blueprint(rest.blp)
    assert accounts.bp is pages.bp  # imported for its routes, registered with the blueprint
    app.register_blueprint(pages.bp)
