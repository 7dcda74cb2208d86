"""The `settings_apply` job: on the day an announced settings change takes effect, copy the
values then in force into the live columns (points.effective), once per change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from points.cycles.jobs import Job, WorkItem, register_job
from points.effective import SETTING_TEXT, apply_due, due_changes
from points.periods import local_date

JOB = "settings_apply"


def _due(session: Session, now: datetime) -> list[WorkItem]:
    """Every announced change whose day has come (one statement)."""
    return [
        WorkItem(
            JOB,
            change.village_id,
            f"change:{change.id}",
            {"change_id": change.id},
            label=f"{change.effective_from.isoformat()} 起{SETTING_TEXT.get(change.name, change.name)}生效",
        )
        for change in due_changes(session, today=local_date(now))
    ]


def _run(session: Session, item: WorkItem, now: datetime) -> dict:
    return apply_due(session, change_id=item.params["change_id"], today=local_date(now), now=now)


# First of all: the day's posting, closing and boards already read the dated values, but pages
# and recording read the live columns, which should hold today's values from the first tick.
register_job(Job(JOB, _due, _run, order=5))
