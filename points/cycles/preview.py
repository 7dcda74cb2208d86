"""What the next close of a scheme will do, before it happens: which period closes when, by
which policy, and how many points of how many households' lots would expire if it closed now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from points.cycles.closing import close_policy_for, expiry_cutoff
from points.models import Scheme
from points.models.ledger import Account, AccountKind
from points.periods import local_date, period_end_utc, period_key


@dataclass(frozen=True)
class ClosePreview:
    scheme_name: str
    period: str
    ends_at: datetime
    close_policy: str
    expires_through: str | None  # lots of this period and older expire; None: nothing does
    subjects: int  # subjects holding points that would expire
    points: int  # points that would expire at today's balances


def next_close(session: Session, *, scheme: Scheme, now: datetime) -> ClosePreview:
    """Preview the close of the period containing `now` at today's balances."""
    current = period_key(scheme.period_kind, local_date(now))
    # The policy in force on the period's last day: a change announced for it applies.
    policy = close_policy_for(session, scheme, current)
    cutoff = expiry_cutoff(scheme, current, policy)
    subjects = points = 0
    if cutoff is not None:
        subjects, points = session.execute(
            select(func.count(Account.id), func.coalesce(func.sum(Account.balance), 0)).where(
                Account.scheme_id == scheme.id,
                Account.kind == AccountKind.LOT,
                Account.period_key <= cutoff,
                Account.balance > 0,
            )
        ).one()
    return ClosePreview(
        scheme_name=scheme.name,
        period=current,
        ends_at=period_end_utc(scheme.period_kind, current),
        close_policy=policy[0],
        expires_through=cutoff,
        subjects=int(subjects),
        points=int(points),
    )
