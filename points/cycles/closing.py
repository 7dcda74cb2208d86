"""Periods closed by their scheme's policy and the next one opened, as two scheduled jobs, and
the admin's view of periods and recent runs. See `points.cycles.jobs` for how a job runs once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from points import ledger
from points.cycles.jobs import Job, WorkItem, register_job
from points.db import lock_village
from points.effective import in_force
from points.models import Account, CycleRun, Period, Scheme
from points.models.catalog import ClosePolicy
from points.models.cycles import PeriodStatus
from points.models.ledger import AccountKind
from points.periods import (
    local_date,
    next_period_key,
    next_period_start,
    period_end_utc,
    period_key,
    period_start,
    previous_period_key,
)

PERIOD_CLOSE = "period_close"
PERIOD_OPEN = "period_open"
CLOSE_BATCH = 500  # lots expired per ledger append during a close

# ---------------------------------------------------------------------------------------------
# Periods: what is due, closing by policy, opening
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SchemePlan:
    to_close: list[str]  # period keys, oldest first
    open_current: bool  # the current period has no row and no close will open it


def _plan(session: Session, scheme: Scheme, now: datetime) -> _SchemePlan:
    """Which of the scheme's periods are due to close at `now`, and whether to open the current."""
    return _plans(session, [scheme], now)[scheme.id]


def _plans(session: Session, schemes: list[Scheme], now: datetime) -> dict[int, _SchemePlan]:
    """Plan many schemes in two statements whatever their number (the scheduler's every tick).

    Rows in `periods` run without gaps from the first period the scheme used: each close opens
    the next. Before a scheme has any row, its first period is that of its oldest lot.
    """
    ids = [s.id for s in schemes]
    rows: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for scheme_id, key, status in session.execute(
            select(Period.scheme_id, Period.key, Period.status).where(Period.scheme_id.in_(ids))
        ):
            rows[scheme_id][key] = status
    fresh = [i for i in ids if not rows[i]]
    oldest = {}
    if fresh:
        oldest = dict(
            session.execute(
                select(Account.scheme_id, func.min(Account.period_start))
                .where(Account.scheme_id.in_(fresh), Account.kind == AccountKind.LOT)
                .group_by(Account.scheme_id)
            ).all()
        )
    return {s.id: _plan_of(s, rows[s.id], oldest.get(s.id), now) for s in schemes}


def _plan_of(scheme: Scheme, rows: dict[str, str], oldest, now: datetime) -> _SchemePlan:
    kind = scheme.period_kind
    current = period_key(kind, local_date(now))
    if rows:
        open_keys = [k for k, s in rows.items() if s == PeriodStatus.OPEN]
        if open_keys:
            first = min(open_keys, key=lambda k: period_start(kind, k))
        else:
            first = next_period_key(kind, max(rows, key=lambda k: period_start(kind, k)))
    else:
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
    schemes = _schemes(session)
    plans = _plans(session, schemes, now)
    return [
        WorkItem(
            PERIOD_CLOSE,
            scheme.village_id,
            f"{scheme.code}:{key}",
            {"scheme_id": scheme.id, "period": key},
            label=f"{scheme.name} {key} 结算（{scheme.close_policy}）",
        )
        for scheme in schemes
        for key in plans[scheme.id].to_close
    ]


def _due_opens(session: Session, now: datetime) -> list[WorkItem]:
    schemes = _schemes(session)
    plans = _plans(session, schemes, now)
    items = []
    for scheme in schemes:
        if plans[scheme.id].open_current:
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


def close_policy_for(session: Session, scheme: Scheme, period: str) -> tuple[str, int | None]:
    """Return (close policy, n) in force on the period's last day: a change announced for a
    later date never reaches back into the period it did not cover (points.effective)."""
    last_day = next_period_start(scheme.period_kind, period) - timedelta(days=1)
    values = in_force(session, target=scheme, on=last_day, names=("close_policy", "expire_after_n"))
    return values["close_policy"], values["expire_after_n"]


def expiry_cutoff(
    scheme: Scheme, closing: str, policy: tuple[str, int | None] | None = None
) -> str | None:
    """Return the newest period whose lots expire when `closing` closes; None: nothing expires.

    `reset` expires the closing period's lots. `expire_after_n` lets a lot live n periods: the
    lot of period Q expires when period Q+n-1 closes, so closing P expires lots of P-(n-1) and
    older (n = 1 is `reset`). Older stragglers (a lot credited after its period closed) expire
    with them. `carry` expires nothing. `policy`: (policy, n) to use instead of the live ones.
    """
    name, after_n = policy or (scheme.close_policy, scheme.expire_after_n)
    if name == ClosePolicy.CARRY:
        return None
    n = 1 if name == ClosePolicy.RESET else int(after_n or 1)
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
    policy = close_policy_for(session, scheme, period)
    cutoff = expiry_cutoff(scheme, period, policy)
    lots: list[ledger.LockedLot] = []
    if cutoff is not None:
        # The lots with their balances, read by the statement that locks them: the balances
        # cannot change until we commit, so the expiry plans from these rows (no second read).
        until = period_start(scheme.period_kind, cutoff)
        lots = [
            ledger.LockedLot._make(lot)
            for lot in session.execute(
                _LOCK_LOTS, {"v": scheme.village_id, "s": scheme.id, "until": until}
            )
        ]
    lock_village(session, scheme.village_id)
    # The head is read once, under the lock; each batch numbers its entries after it and
    # returns the next (the head row moves only from the head it was given).
    head = ledger.chain_head(session, scheme.village_id)
    seq_before = head[0]
    expired = 0
    # Set-based, in bounded batches: each batch is one replay check, one conditional balance
    # UPDATE (closing the lots too) and one chain append for up to CLOSE_BATCH lots.
    for i in range(0, len(lots), CLOSE_BATCH):
        batch = lots[i : i + CLOSE_BATCH]
        ids, head = ledger.expire_locked(session, lots=batch, now=now, head=head)
        # A lot still open under our lock has no expiry entry (an expiry closes its lot in the
        # same transaction): each id is this close's entry, moving the locked balance.
        expired += sum(lot.balance for lot, e in zip(batch, ids, strict=True) if e is not None)
    row.status = PeriodStatus.CLOSED
    row.closed_at = now
    row.close_policy = policy[0]
    row.close_from_seq, row.close_to_seq = seq_before, head[0]
    row.lots_closed, row.points_expired = len(lots), expired
    session.flush()
    _insert_period(session, scheme, next_period_key(scheme.period_kind, period), now)
    return row


# Built once (a close runs them for every scheme of the county). Core: accounts are only ever
# written by Core statements, so there is nothing of them for the session to flush first.
_ACCOUNTS = Account.__table__
_LOCK_LOTS = (
    select(*ledger.LOCKED_LOT_COLUMNS)
    .where(
        _ACCOUNTS.c.village_id == bindparam("v"),
        _ACCOUNTS.c.scheme_id == bindparam("s"),
        _ACCOUNTS.c.kind == AccountKind.LOT.value,
        _ACCOUNTS.c.closed_at.is_(None),
        _ACCOUNTS.c.period_start <= bindparam("until"),
    )
    .order_by(_ACCOUNTS.c.id)
    .with_for_update()
)
_PERIOD_ROW = (
    select(Period)
    .where(
        Period.village_id == bindparam("v"),
        Period.scheme_id == bindparam("s"),
        Period.key == bindparam("k"),
    )
    .execution_options(populate_existing=True)
)


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
    _insert_period(session, scheme, key, now)
    return session.execute(
        _PERIOD_ROW, {"v": scheme.village_id, "s": scheme.id, "k": key}
    ).scalar_one()


def _insert_period(session: Session, scheme: Scheme, key: str, now: datetime) -> None:
    """Insert the scheme's row for period `key`, open, unless it exists (race-safe)."""
    session.connection().execute(
        _period_insert(session.get_bind().dialect.name),
        {
            "village_id": scheme.village_id,
            "scheme_id": scheme.id,
            "key": key,
            "starts_on": period_start(scheme.period_kind, key),
            "ends_at": period_end_utc(scheme.period_kind, key),
            "opened_at": now,
        },
    )


@lru_cache
def _period_insert(dialect: str):
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(Period.__table__)
    # No conflict target: the key is (scheme_id, key), or (village_id, scheme_id, key) on Citus.
    return insert.values(
        status=PeriodStatus.OPEN.value, lots_closed=0, points_expired=0
    ).on_conflict_do_nothing()


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
