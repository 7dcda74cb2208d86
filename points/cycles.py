"""Scheduled work done exactly once: periods closed by their scheme's policy, and a job registry.

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

Registering a job (the claims, boards and QR nonce modules do this in their own module):

    from points import cycles

    def _due(session, now):
        # read only: one WorkItem per piece of work, its key unique within (village, job)
        return [cycles.WorkItem("claims_post", c.village_id, f"claim:{c.id}", {"claim_id": c.id})
                for c in claims_whose_notice_ended(session, now)]

    def _run(session, item, now):
        ...  # flush, never commit; return a small JSON-able dict for the run's detail, or None

    cycles.register_job(cycles.Job("claims_post", _due, _run, order=10))

then add the module's name to `JOB_MODULES` below, so every runner imports it. `order` sets the
sequence: post claims whose 公示 ended (10) before closing periods (50) and opening the current
one (55), then draft the month's board (70), then purge spent QR nonces (90).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from points import ledger
from points.db import lock_village
from points.models import Account, CycleRun, Period, Scheme
from points.models.catalog import ClosePolicy
from points.models.cycles import CycleRunStatus, PeriodStatus
from points.models.ledger import AccountKind
from points.periods import (
    local_date,
    next_period_key,
    period_end_utc,
    period_key,
    period_start,
    previous_period_key,
)

log = logging.getLogger(__name__)

# Modules whose import registers their jobs; other modules add their name here.
JOB_MODULES: tuple[str, ...] = ("points.claims", "points.boards", "points.credentials")

PERIOD_CLOSE = "period_close"
PERIOD_OPEN = "period_open"


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


def run_item(session: Session, item: WorkItem, *, now: datetime) -> ItemResult:
    """Do one item unless its `cycle_runs` key is taken; a failure rolls back only this item."""
    job = _JOBS[item.job]
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


def reconcile(session: Session, *, now: datetime, village_id: int | None = None) -> ReconcileReport:
    """Do all work due at `now` exactly once, in the caller's transaction (a savepoint each).

    Jobs run in order and each job's items are listed just before they run, so a later job sees
    what an earlier one did (a period closed before the month's board is drafted).
    """
    report = ReconcileReport(now=now)
    for job in registered_jobs():
        for item in due_items(session, job, now=now, village_id=village_id):
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
    ins = _dialect_insert(session, CycleRun).values(**values)
    # RETURNING tells whether our row went in (rowcount is not kept for INSERTs).
    stmt = ins.on_conflict_do_nothing(index_elements=["village_id", "kind", "key"]).returning(
        CycleRun.__table__.c.id
    )
    return session.connection().execute(stmt).scalar_one_or_none()


def _dialect_insert(session: Session, model):
    """A Core INSERT of the model's table (with ON CONFLICT), outside the ORM's bookkeeping."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model.__table__)


# ---------------------------------------------------------------------------------------------
# Periods: what is due, closing by policy, opening
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SchemePlan:
    to_close: list[str]  # period keys, oldest first
    open_current: bool  # the current period has no row and no close will open it


def _plan(session: Session, scheme: Scheme, now: datetime) -> _SchemePlan:
    """Which of the scheme's periods are due to close at `now`, and whether to open the current.

    Rows in `periods` run without gaps from the first period the scheme used: each close opens
    the next. Before a scheme has any row, its first period is that of its oldest lot.
    """
    kind = scheme.period_kind
    current = period_key(kind, local_date(now))
    rows = dict(
        session.execute(
            select(Period.key, Period.status).where(Period.scheme_id == scheme.id)
        ).all()
    )
    if rows:
        open_keys = [k for k, s in rows.items() if s == PeriodStatus.OPEN]
        if open_keys:
            first = min(open_keys, key=lambda k: period_start(kind, k))
        else:
            first = next_period_key(kind, max(rows, key=lambda k: period_start(kind, k)))
    else:
        oldest = session.execute(
            select(func.min(Account.period_start)).where(
                Account.scheme_id == scheme.id, Account.kind == AccountKind.LOT
            )
        ).scalar_one()
        first = period_key(kind, oldest) if oldest else current
    to_close, key = [], first
    while period_end_utc(kind, key) <= now:
        if rows.get(key) != PeriodStatus.CLOSED:
            to_close.append(key)
        key = next_period_key(kind, key)
    covered = bool(to_close) and next_period_key(kind, to_close[-1]) == current
    open_current = (
        current not in rows
        and not covered
        and period_start(kind, first) <= (period_start(kind, current))
    )
    return _SchemePlan(to_close, open_current)


def _schemes(session: Session) -> list[Scheme]:
    return list(session.execute(select(Scheme).order_by(Scheme.village_id, Scheme.id)).scalars())


def _due_closes(session: Session, now: datetime) -> list[WorkItem]:
    return [
        WorkItem(
            PERIOD_CLOSE,
            scheme.village_id,
            f"{scheme.code}:{key}",
            {"scheme_id": scheme.id, "period": key},
            label=f"{scheme.name} {key} 结算（{scheme.close_policy}）",
        )
        for scheme in _schemes(session)
        for key in _plan(session, scheme, now).to_close
    ]


def _due_opens(session: Session, now: datetime) -> list[WorkItem]:
    items = []
    for scheme in _schemes(session):
        if _plan(session, scheme, now).open_current:
            key = period_key(scheme.period_kind, local_date(now))
            items.append(
                WorkItem(
                    PERIOD_OPEN,
                    scheme.village_id,
                    f"{scheme.code}:{key}",
                    {"scheme_id": scheme.id, "period": key},
                    label=f"{scheme.name} {key} 开始",
                )
            )
    return items


def expiry_cutoff(scheme: Scheme, closing: str) -> str | None:
    """Return the newest period whose lots expire when `closing` closes; None: nothing expires.

    `reset` expires the closing period's lots. `expire_after_n` lets a lot live n periods: the
    lot of period Q expires when period Q+n-1 closes, so closing P expires lots of P-(n-1) and
    older (n = 1 is `reset`). Older stragglers (a lot credited after its period closed) expire
    with them. `carry` expires nothing.
    """
    if scheme.close_policy == ClosePolicy.CARRY:
        return None
    n = 1 if scheme.close_policy == ClosePolicy.RESET else int(scheme.expire_after_n or 1)
    key = closing
    for _ in range(n - 1):
        key = previous_period_key(scheme.period_kind, key)
    return key


def close_period(session: Session, *, scheme: Scheme, period: str, now: datetime) -> Period:
    """Close one period of a scheme by its policy and open the next; call it via reconcile.

    The lots to expire are row-locked first, then the village's chain lock is taken: the same
    order as every ledger write (balances, then chain), so a concurrent redemption cannot
    deadlock with the close; and the expiry entries are contiguous on the chain.
    """
    row = _ensure_period(session, scheme, period, now)
    if row.status == PeriodStatus.CLOSED:
        return row
    cutoff = expiry_cutoff(scheme, period)
    lots: list[int] = []
    if cutoff is not None:
        lots = list(
            session.execute(
                select(Account.id)
                .where(
                    Account.scheme_id == scheme.id,
                    Account.kind == AccountKind.LOT,
                    Account.closed_at.is_(None),
                    Account.period_start <= period_start(scheme.period_kind, cutoff),
                )
                .order_by(Account.id)
                .with_for_update()
            ).scalars()
        )
    lock_village(session, scheme.village_id)
    seq_before, _ = ledger.chain_head(session, scheme.village_id)
    expired = 0
    for lot_id in lots:
        entry = ledger.expire_lot(session, account_id=lot_id, now=now)
        if entry is not None:
            expired += sum(p.amount for p in entry.postings if p.account_id != lot_id)
    seq_after, _ = ledger.chain_head(session, scheme.village_id)
    row.status = PeriodStatus.CLOSED
    row.closed_at = now
    row.close_policy = scheme.close_policy
    row.close_from_seq, row.close_to_seq = seq_before, seq_after
    row.lots_closed, row.points_expired = len(lots), expired
    session.flush()
    _ensure_period(session, scheme, next_period_key(scheme.period_kind, period), now)
    return row


def _run_close(session: Session, item: WorkItem, now: datetime) -> dict:
    scheme = session.get(Scheme, item.params["scheme_id"])
    row = close_period(session, scheme=scheme, period=item.params["period"], now=now)
    return {"lots": row.lots_closed, "expired": row.points_expired, "policy": row.close_policy}


def _run_open(session: Session, item: WorkItem, now: datetime) -> dict:
    scheme = session.get(Scheme, item.params["scheme_id"])
    _ensure_period(session, scheme, item.params["period"], now)
    return {}


def _ensure_period(session: Session, scheme: Scheme, key: str, now: datetime) -> Period:
    """Return the scheme's row for period `key`, inserting it open when missing (race-safe)."""
    ins = _dialect_insert(session, Period).values(
        village_id=scheme.village_id,
        scheme_id=scheme.id,
        key=key,
        starts_on=period_start(scheme.period_kind, key),
        ends_at=period_end_utc(scheme.period_kind, key),
        status=PeriodStatus.OPEN.value,
        opened_at=now,
        lots_closed=0,
        points_expired=0,
    )
    session.connection().execute(ins.on_conflict_do_nothing(index_elements=["scheme_id", "key"]))
    return session.execute(
        select(Period)
        .where(Period.scheme_id == scheme.id, Period.key == key)
        .execution_options(populate_existing=True)
    ).scalar_one()


register_job(Job(PERIOD_CLOSE, _due_closes, _run_close, order=50))
register_job(Job(PERIOD_OPEN, _due_opens, _run_open, order=55))


# ---------------------------------------------------------------------------------------------
# Reads for admins
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodView:
    """A scheme's period as an admin reads it; status is open, closed, or due (to close now)."""

    scheme_code: str
    scheme_name: str
    period_kind: str
    close_policy: str
    key: str
    starts_on: date
    ends_at: datetime
    status: str
    closed_at: datetime | None = None
    lots_closed: int = 0
    points_expired: int = 0


def list_periods(session: Session, *, village_id: int, now: datetime) -> list[PeriodView]:
    """Return each scheme's recorded periods, those due to close at `now`, and the current one."""
    out = []
    schemes = session.execute(
        select(Scheme).where(Scheme.village_id == village_id).order_by(Scheme.id)
    ).scalars()
    for scheme in schemes:
        kind = scheme.period_kind
        views = {}
        for row in session.execute(select(Period).where(Period.scheme_id == scheme.id)).scalars():
            views[row.key] = _view(scheme, row.key, row.status, row)
        plan = _plan(session, scheme, now)
        for key in plan.to_close:
            views[key] = _view(scheme, key, "due", None)
        current = period_key(kind, local_date(now))
        views.setdefault(current, _view(scheme, current, PeriodStatus.OPEN, None))
        out += sorted(views.values(), key=lambda v: v.starts_on)
    return out


def _view(scheme: Scheme, key: str, status: str, row: Period | None) -> PeriodView:
    return PeriodView(
        scheme_code=scheme.code,
        scheme_name=scheme.name,
        period_kind=scheme.period_kind,
        close_policy=scheme.close_policy,
        key=key,
        starts_on=period_start(scheme.period_kind, key),
        ends_at=period_end_utc(scheme.period_kind, key),
        status=str(status),
        closed_at=row.closed_at if row else None,
        lots_closed=row.lots_closed if row else 0,
        points_expired=row.points_expired if row else 0,
    )


def recent_runs(session: Session, *, village_id: int, limit: int = 20) -> list[CycleRun]:
    """Return the village's latest cycle runs, newest first."""
    return list(
        session.execute(
            select(CycleRun)
            .where(CycleRun.village_id == village_id)
            .order_by(CycleRun.id.desc())
            .limit(limit)
        ).scalars()
    )
