"""Scheduled work done exactly once: a job registry and `reconcile(now)`.

`reconcile(session, now=…)` asks every registered job what is due at `now` and runs each due
item once. An item is guarded by a `cycle_runs` row, UNIQUE on (village, job, key), which is
inserted *first*, in the same transaction as the work: a second runner's insert waits for the
first transaction and then finds the key taken (it reports the item as skipped); a crash rolls
the row back with the work, so the next run does the whole item again. The clock is only an
argument: APScheduler (api/scheduler.py), `points cycle close --now …` and tests all pass it in.

Transactions. `reconcile` runs in the caller's transaction, one SAVEPOINT per item (a failing
item is rolled back and reported, the others stand). The scheduler and the CLI instead call
`due_items` and `run_item` with one transaction per item, so a long catch-up commits village by
village. A period close of 1,000 households is one transaction: it commits whole or not at all,
and its expiry entries carry the ledger's own keys (`close:<lot>:<period>`) besides.

Registering a job (the claims, boards, period and QR nonce modules do this in their own module):

    from points.cycles.jobs import Job, WorkItem, register_job

    def _due(session, now):
        # read only: one WorkItem per piece of work, its key unique within (village, job)
        return [WorkItem("claims_post", c.village_id, f"claim:{c.id}", {"claim_id": c.id})
                for c in claims_whose_notice_ended(session, now)]

    def _run(session, item, now):
        ...  # flush, never commit; return a small JSON-able dict for the run's detail, or None

    register_job(Job("claims_post", _due, _run, order=10))

A job whose items are cheaper done together (the month's boards of every village) also
gives `run_batch`; `reconcile` and the scheduler then run its due items with `run_items`:
the same `cycle_runs` rows, one SAVEPOINT for the batch, and each item alone if the batch fails.

Then add the module's name to `JOB_MODULES` below, so every runner imports it. `order` sets the
sequence: apply settings changes whose day has come (5), post claims whose 公示 ended (10), evaluate
automatic rules (20), before closing periods (50) and opening the current one (55), then draft the month's
board (70) and the year's honour lists (75), then purge spent QR nonces (90).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from points.db import dialect_insert
from points.models import CycleRun
from points.models.cycles import CycleRunStatus

log = logging.getLogger(__name__)

# Modules whose import registers their jobs; other modules add their name here.
JOB_MODULES: tuple[str, ...] = (
    "points.cycles.settings",
    "points.claims.workflow",
    "points.claims.automatic",
    "points.cycles.closing",
    "points.boards.monthly",
    "points.honours.designate",
    "points.shop.credentials",
)


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkItem:
    """One due piece of work: done at most once per (village, job, key)."""

    job: str
    village_id: int
    key: str
    params: dict = field(default_factory=dict, compare=False)
    label: str = ""


@dataclass(frozen=True)
class Job:
    """A kind of scheduled work: `due(session, now)` lists items, `run(session, item, now)` does one.

    `due` only reads. `run` flushes, never commits, and returns a JSON-able dict (or None) kept
    as the run's detail. Lower `order` runs first.
    """

    name: str
    due: Callable[[Session, datetime], list[WorkItem]]
    run: Callable[[Session, WorkItem, datetime], dict | None]
    order: int = 100
    # Optional: do many due items at once, `run_batch(session, items, now)` returning one detail
    # per item in order (the month's boards of every village: one set of statements, not one
    # per village). Runners hand it the job's due items together (`run_items`); should the
    # batch fail, each item is run alone with `run`, so one village's failure stays its own.
    run_batch: Callable[[Session, list[WorkItem], datetime], list[dict | None]] | None = None


_JOBS: dict[str, Job] = {}
_loaded = False


def register_job(job: Job) -> None:
    """Register (or replace, by name) a job that reconcile runs."""
    if len(job.name) > 32:
        raise ValueError(f"job name over 32 characters: {job.name!r}")
    _JOBS[job.name] = job


def registered_jobs() -> list[Job]:
    """Return every registered job in run order, importing `JOB_MODULES` first."""
    global _loaded
    if not _loaded:
        for module in JOB_MODULES:
            importlib.import_module(module)
        _loaded = True
    return sorted(_JOBS.values(), key=lambda j: (j.order, j.name))


@dataclass(frozen=True)
class ItemResult:
    """What happened to one item: `done`, `skipped` (another runner did it) or `failed`."""

    item: WorkItem
    status: str
    detail: dict | None = None
    error: str | None = None


@dataclass
class ReconcileReport:
    """Every item reconcile found due at `now`, and what became of it."""

    now: datetime
    results: list[ItemResult] = field(default_factory=list)

    def _with(self, status: str) -> list[ItemResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[ItemResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[ItemResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[ItemResult]:
        return self._with("failed")


def due_items(
    session: Session, job: Job, *, now: datetime, village_id: int | None = None
) -> list[WorkItem]:
    """Return the job's items due at `now` (optionally in one village); reads only."""
    items = job.due(session, now)
    return [i for i in items if village_id is None or i.village_id == village_id]


def pending(session: Session, *, now: datetime, village_id: int | None = None) -> list[WorkItem]:
    """Return every registered job's items due at `now`, in run order; reads only."""
    return [
        item
        for job in registered_jobs()
        for item in due_items(session, job, now=now, village_id=village_id)
    ]


def run_item(
    session: Session, item: WorkItem, *, now: datetime, job: Job | None = None
) -> ItemResult:
    """Do one item unless its `cycle_runs` key is taken; a failure rolls back only this item.

    `job` runs the item with a job the caller holds (the demo) instead of the registered one.
    """
    job = job or _JOBS[item.job]
    savepoint = session.begin_nested()
    try:
        run_id = _claim_run(session, item, now)
        if run_id is None:
            savepoint.commit()
            return ItemResult(item, "skipped")
        detail = job.run(session, item, now)
        session.execute(
            update(CycleRun)
            .where(CycleRun.id == run_id)
            .values(status=CycleRunStatus.DONE, finished_at=now, detail=detail)
        )
        savepoint.commit()
        return ItemResult(item, "done", detail)
    except Exception as exc:
        savepoint.rollback()
        log.exception("cycle job %s %s failed", item.job, item.key)
        return ItemResult(item, "failed", error=f"{type(exc).__name__}: {exc}")


def run_items(
    session: Session, items: list[WorkItem], *, now: datetime, job: Job | None = None
) -> list[ItemResult]:
    """Do the due items of one job, together when the job has `run_batch`: every item's
    `cycle_runs` row is inserted first (one statement; a key already taken is skipped, as in
    `run_item`), then the batch runs, then the rows are marked done, all in one SAVEPOINT. If
    anything fails the SAVEPOINT is rolled back and each item is run alone (`run_item`), so
    the items that can be done are done and only a failing item is reported failed."""
    if not items:
        return []
    job = job or _JOBS[items[0].job]
    if job.run_batch is None or len(items) == 1:
        return [run_item(session, item, now=now, job=job) for item in items]
    savepoint = session.begin_nested()
    try:
        run_ids = _claim_runs(session, items, now)
        claimed = [i for i in items if (i.village_id, i.key) in run_ids]
        details = list(job.run_batch(session, claimed, now)) if claimed else []
        if len(details) != len(claimed):
            raise RuntimeError(f"{job.name}: run_batch returned {len(details)} details")
        if claimed:
            session.execute(
                update(CycleRun),
                [
                    {
                        "id": run_ids[(item.village_id, item.key)],
                        "status": CycleRunStatus.DONE,
                        "finished_at": now,
                        "detail": detail,
                    }
                    for item, detail in zip(claimed, details, strict=True)
                ],
            )
        savepoint.commit()
    except Exception:
        savepoint.rollback()
        log.exception(
            "cycle job %s: the batch of %d failed; running each alone", job.name, len(items)
        )
        return [run_item(session, item, now=now, job=job) for item in items]
    done = {(i.village_id, i.key): d for i, d in zip(claimed, details, strict=True)}
    return [
        ItemResult(i, "done", done[(i.village_id, i.key)])
        if (i.village_id, i.key) in done
        else ItemResult(i, "skipped")
        for i in items
    ]


def reconcile(session: Session, *, now: datetime, village_id: int | None = None) -> ReconcileReport:
    """Do all work due at `now` exactly once, in the caller's transaction (a savepoint each).

    Jobs run in order and each job's items are listed just before they run, so a later job sees
    what an earlier one did (a period closed before the month's board is drafted).
    """
    report = ReconcileReport(now=now)
    for job in registered_jobs():
        items = due_items(session, job, now=now, village_id=village_id)
        if job.run_batch is not None:
            report.results += run_items(session, items, now=now, job=job)
            continue
        for item in items:
            report.results.append(run_item(session, item, now=now))
    return report


def _claim_run(session: Session, item: WorkItem, now: datetime) -> int | None:
    """Insert the item's cycle_runs row; None when the key exists (waits for a running twin)."""
    values = {
        "village_id": item.village_id,
        "kind": item.job,
        "key": item.key,
        "status": CycleRunStatus.RUNNING.value,
        "started_at": now,
    }
    # ON CONFLICT DO NOTHING rather than catching IntegrityError: on PostgreSQL it waits for a
    # concurrent uncommitted twin and then does nothing, without aborting our transaction.
    ins = dialect_insert(session, CycleRun).values(**values)
    # RETURNING tells whether our row went in (rowcount is not kept for INSERTs).
    stmt = ins.on_conflict_do_nothing(index_elements=["village_id", "kind", "key"]).returning(
        CycleRun.__table__.c.id
    )
    return session.connection().execute(stmt).scalar_one_or_none()


def _claim_runs(session: Session, items: list[WorkItem], now: datetime) -> dict[tuple, int]:
    """Insert the items' cycle_runs rows in one statement; return {(village, key): run id} for
    those that went in (a key taken, or held by a running twin, is left out as in _claim_run)."""
    values = [
        {
            "village_id": item.village_id,
            "kind": item.job,
            "key": item.key,
            "status": CycleRunStatus.RUNNING.value,
            "started_at": now,
        }
        for item in items
    ]
    table = CycleRun.__table__
    stmt = (
        dialect_insert(session, CycleRun)
        .values(values)
        .on_conflict_do_nothing(index_elements=["village_id", "kind", "key"])
        .returning(table.c.village_id, table.c.key, table.c.id)
    )
    return {(vid, key): rid for vid, key, rid in session.connection().execute(stmt)}
