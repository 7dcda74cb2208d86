"""Periods per scheme, the once-only record of scheduled work, and the scheduler's lease."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from points.db import Base, intpk


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Period(Base):
    """One period of a scheme (e.g. household 2026-Q4): open, then closed once by its policy.

    A closing run appends its expiry entries while holding the village's chain lock, so they are
    exactly the chain's entries after `close_from_seq` up to `close_to_seq`: statements use this
    range to count an expiry in the period whose close posted it (expire_after_n expires older
    lots at a later close).
    """

    __tablename__ = "periods"
    __table_args__ = (
        UniqueConstraint("scheme_id", "key"),
        CheckConstraint("status IN ('open', 'closed')", name="status_known"),
        CheckConstraint(
            "status <> 'closed' OR (closed_at IS NOT NULL AND close_to_seq IS NOT NULL)",
            name="closed_has_close",
        ),
    )

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("schemes.id"))
    key: Mapped[str] = mapped_column(String(16))  # '2026-11', '2026-Q4', '2026'
    starts_on: Mapped[date] = mapped_column(Date)  # first local date
    ends_at: Mapped[datetime]  # local midnight after the last day, in UTC
    status: Mapped[str] = mapped_column(String(16), default=PeriodStatus.OPEN)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    close_policy: Mapped[str | None] = mapped_column(String(16))  # the policy applied at close
    close_from_seq: Mapped[int | None]  # chain head before the close (exclusive)
    close_to_seq: Mapped[int | None]  # chain head after the close (inclusive)
    lots_closed: Mapped[int] = mapped_column(default=0)
    points_expired: Mapped[int] = mapped_column(default=0)


class CycleRunStatus(StrEnum):
    RUNNING = "running"  # only ever seen inside the run's own transaction
    DONE = "done"


class CycleRun(Base):
    """A piece of scheduled work done once: the UNIQUE key is what stops a second runner.

    The row is inserted first, in the same transaction as the work: a concurrent runner's
    insert waits for that transaction and then finds the key taken; a crash rolls both back.
    """

    __tablename__ = "cycle_runs"
    __table_args__ = (UniqueConstraint("village_id", "kind", "key"),)

    id: Mapped[intpk]
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    kind: Mapped[str] = mapped_column(String(32))  # the job's name, e.g. 'period_close'
    key: Mapped[str] = mapped_column(String(100))  # e.g. 'household:2026-Q4'
    status: Mapped[str] = mapped_column(String(16), default=CycleRunStatus.RUNNING)
    started_at: Mapped[datetime]  # the reconcile clock (`now`), which tests choose
    finished_at: Mapped[datetime | None]
    detail: Mapped[dict | None] = mapped_column(JSON)


class Lease(Base):
    """A named, expiring lease: who may act as the scheduler now (e.g. one of two servers)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]
