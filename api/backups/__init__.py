"""Operations: automatic backups and restore, moving a village, /metrics and request logs."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Hook the backups into the scheduler and serve /metrics with JSON request logs."""
    from api.backups import metrics, scheduled
    from api.scheduler import add_hook

    add_hook(app, "before_job", scheduled.before_period_close)
    add_hook(app, "tick", scheduled.daily_backup)
    metrics.init_app(app)
