"""Scheduled work done exactly once: the job registry and reconcile (jobs), period close and
open by policy (closing), the scheduler's lease (leases) and period statements (statements).

Other features use this package's names below (its public API), never a `_private` name."""

from points.cycles.closing import (
    PERIOD_CLOSE,
    PERIOD_OPEN,
    PeriodView,
    close_period,
    expiry_cutoff,
    list_periods,
    recent_runs,
)
from points.cycles.jobs import (
    JOB_MODULES,
    ItemResult,
    Job,
    ReconcileReport,
    WorkItem,
    due_items,
    pending,
    reconcile,
    register_job,
    registered_jobs,
    run_item,
    run_items,
)

__all__ = [
    "JOB_MODULES",
    "WorkItem",
    "Job",
    "register_job",
    "registered_jobs",
    "ItemResult",
    "ReconcileReport",
    "due_items",
    "pending",
    "run_item",
    "run_items",
    "reconcile",
    "PERIOD_CLOSE",
    "PERIOD_OPEN",
    "expiry_cutoff",
    "close_period",
    "PeriodView",
    "list_periods",
    "recent_runs",
]
