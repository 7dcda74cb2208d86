"""The scheduler's wiring: APScheduler is only the clock; `points.cycles` and the database decide.

Every tick takes (or renews) the `scheduler` lease and, holding it, runs `reconcile_now`: each
due item in a transaction of its own, so a long catch-up commits item by item and one failing
item does not hold back the rest (a job that does its items together, the month's boards, runs
them in one transaction where a failing item is still rolled back alone). The lease keeps two servers from both acting; should two ever
overlap (a lease outlived by a very long run), the `cycle_runs` keys still make each item once.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import uuid
from datetime import UTC, datetime

from flask import Flask

from points import cycles
from points.cycles import leases
from points.db import utcnow

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
DEFAULT_INTERVAL = 120  # seconds between ticks
HOOK_EVENTS = ("before_job", "item_done", "tick")


def add_hook(app: Flask, event: str, hook) -> None:
    """Let a feature act around scheduled work without this module importing it.

    `before_job(app, job_name, items, now)` runs before a job's due items (a backup before a
    period close); `item_done(app, result)` after each item (metrics); `tick(app, now)` once per
    tick, while holding the lease, after reconcile (the daily backup). A hook that raises is
    logged and does not stop the scheduled work.
    """
    if event not in HOOK_EVENTS:
        raise ValueError(f"unknown scheduler event {event!r}")
    app.extensions.setdefault("points.scheduler_hooks", {}).setdefault(event, []).append(hook)


def _fire(app: Flask, event: str, *args) -> None:
    for hook in app.extensions.get("points.scheduler_hooks", {}).get(event, []):
        try:
            hook(app, *args)
        except Exception:
            log.exception("scheduler hook %s for %s failed", getattr(hook, "__name__", hook), event)


def reconcile_now(
    app: Flask, *, now: datetime, village_id: int | None = None
) -> cycles.ReconcileReport:
    """Run every item due at `now` once, one transaction per item; return what happened."""
    maker = app.extensions["points.sessionmaker"]
    report = cycles.ReconcileReport(now=now)
    for job in cycles.registered_jobs():
        with maker() as session, session.begin():
            items = cycles.due_items(session, job, now=now, village_id=village_id)
        if items:
            _fire(app, "before_job", job.name, items, now)
        if job.run_batch is not None and len(items) > 1:
            # A job that does its items together (the month's boards): one transaction for
            # the batch; inside it a failing item is rolled back alone (cycles.run_items).
            try:
                with maker() as session, session.begin():
                    results = cycles.run_items(session, items, now=now, job=job)
            except Exception as exc:  # the commit itself failed: every item is still due
                log.exception("committing the %s batch failed", job.name)
                error = f"{type(exc).__name__}: {exc}"
                results = [cycles.ItemResult(item, "failed", error=error) for item in items]
            for result in results:
                report.results.append(result)
                _fire(app, "item_done", result)
            continue
        for item in items:
            try:
                with maker() as session, session.begin():
                    result = cycles.run_item(session, item, now=now)
            except Exception as exc:  # the commit itself failed (e.g. the connection dropped)
                log.exception("committing %s %s failed", item.job, item.key)
                result = cycles.ItemResult(item, "failed", error=f"{type(exc).__name__}: {exc}")
            report.results.append(result)
            _fire(app, "item_done", result)
    return report


class Ticker:
    """Calls reconcile on the wall clock while this process holds the lease."""

    def __init__(self, app: Flask, *, interval: int | None = None) -> None:
        self.app = app
        self.interval = int(interval or app.config.get("SCHEDULER_INTERVAL") or DEFAULT_INTERVAL)
        # Long enough to survive one slow tick; short enough that a crashed holder's lease
        # passes to another process within a few minutes.
        self.lease_seconds = int(app.config.get("SCHEDULER_LEASE") or max(3 * self.interval, 60))
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def tick(self) -> cycles.ReconcileReport | None:
        """Renew the lease and reconcile; None when another process holds the lease."""
        maker = self.app.extensions["points.sessionmaker"]
        try:
            with maker() as session, session.begin():
                held = leases.take_lease(
                    session,
                    name=LEASE_NAME,
                    holder=self.holder,
                    now=utcnow(),
                    seconds=self.lease_seconds,
                )
            if not held:
                log.info("scheduler lease is held by another process; not acting")
                return None
            now = utcnow()
            report = reconcile_now(self.app, now=now)
            _fire(self.app, "tick", now)
        except Exception:  # the clock keeps ticking: the next tick retries what is still due
            log.exception("reconcile failed")
            return None
        for result in report.results:
            log.info(
                "%s %s %s %s",
                result.status,
                result.item.job,
                result.item.key,
                result.detail or result.error or "",
            )
        return report

    def release(self) -> None:
        """Give up the lease so another process can act at once."""
        maker = self.app.extensions["points.sessionmaker"]
        try:
            with maker() as session, session.begin():
                leases.release_lease(session, name=LEASE_NAME, holder=self.holder)
        except Exception:
            log.exception("could not release the scheduler lease")


def start_in_process(app: Flask, *, interval: int | None = None):
    """Start a background scheduler for `points serve`; None under TESTING.

    Its first tick runs at once (the catch-up after downtime), then every `interval` seconds.
    """
    if app.config.get("TESTING"):
        return None
    from apscheduler.schedulers.background import BackgroundScheduler

    ticker = Ticker(app, interval=interval)
    scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
    _add_tick(scheduler, ticker)
    scheduler.start()

    def _stop() -> None:
        scheduler.shutdown(wait=False)
        ticker.release()

    atexit.register(_stop)
    return scheduler


def run_dedicated(app: Flask, *, interval: int | None = None) -> None:
    """Run the scheduler in this process until it is stopped (`points scheduler`)."""
    import signal

    from apscheduler.schedulers.blocking import BlockingScheduler

    ticker = Ticker(app, interval=interval)
    scheduler = BlockingScheduler(timezone=UTC)
    _add_tick(scheduler, ticker)

    def _terminate(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    log.info("scheduler %s: reconcile every %s s", ticker.holder, ticker.interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        ticker.release()


def _add_tick(scheduler, ticker: Ticker) -> None:
    scheduler.add_job(
        ticker.tick,
        "interval",
        seconds=ticker.interval,
        next_run_time=datetime.now(UTC),
        id="reconcile",
        max_instances=1,  # a slow tick is never overlapped by the next one
        coalesce=True,  # ticks missed while asleep run once, not once each
        misfire_grace_time=None,
    )
