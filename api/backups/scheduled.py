"""The backups the scheduler takes: one a day, and one before any period is closed."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path

from flask import Flask

from api.db import transaction
from points import backups
from points.cycles import PERIOD_CLOSE

log = logging.getLogger(__name__)


def backup_now(
    app: Flask,
    *,
    now: datetime,
    reason: str,
    slot: str | None = None,
    folder: Path | None = None,
) -> backups.Taken | None:
    """Take a backup into `folder` (default: BACKUP_DIR) in a transaction of its own.

    A folder named by the operator (`points backup DIR`) is created if need be; the configured
    one is not (a missing one is a USB stick pulled out), except the default in the instance
    folder."""
    create = folder is not None or not app.config.get("BACKUP_DIR_SET")
    folder = folder or app.config.get("BACKUP_DIR")
    if not folder:
        return None
    with app.app_context(), transaction(app) as session:
        taken = backups.take_backup(
            session,
            folder=Path(folder),
            database_url=app.config["DATABASE_URL"],
            evidence_root=Path(app.config["EVIDENCE_DIR"]),
            now=now,
            reason=reason,
            slot=slot,
            keep_daily=int(app.config.get("BACKUP_KEEP_DAILY") or backups.KEEP_DAILY),
            keep_monthly=int(app.config.get("BACKUP_KEEP_MONTHLY") or backups.KEEP_MONTHLY),
            create_folder=create,
        )
    if taken is not None:
        log.info("backup (%s) written to %s", reason, taken.path)
    return taken


def daily_backup(app: Flask, now: datetime) -> backups.Taken | None:
    """The day's backup, once per local day however many ticks and schedulers run."""
    return backup_now(app, now=now, reason=backups.DAILY, slot=backups.daily_slot(now))


def before_period_close(app: Flask, job: str, items, now: datetime) -> backups.Taken | None:
    """Back up before closing periods, once for each set of due closes (a close that fails
    and is retried next tick is not backed up again)."""
    if job != PERIOD_CLOSE:
        return None
    keys = ",".join(sorted(f"{i.village_id}:{i.key}" for i in items))
    slot = "close:" + hashlib.sha256(keys.encode()).hexdigest()[:32]
    return backup_now(app, now=now, reason=backups.PERIOD_CLOSE, slot=slot)
