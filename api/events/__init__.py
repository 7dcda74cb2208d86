"""Event check-in by QR: staff create events and print their QR poster, residents scan it on
their phones, the door scans household cards and phone codes, and closing an event records one
group claim (API and pages)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this feature's API blueprint and pages."""
    from api.events import pages, rest
    from api.rest import api

    api.register_blueprint(rest.blp)
    app.register_blueprint(pages.bp)
