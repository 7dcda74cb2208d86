"""The monthly 台账: every journal entry of one local month, in chain order, with the subject,
what it was for, its score change and the points it moved on the subject's accounts. Read-only;
the clerk files it instead of retyping the paper ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from points.models import Household, JournalEntry, Resident, Scheme, Village
from points.models.ledger import Account, AccountKind, Posting
from points.periods import period_end_utc, previous_period_key

KIND_TEXT = {
    "award": "加分",
    "deduction": "扣分",
    "redemption": "兑换",
    "reversal": "冲正",
    "expiry": "期末清零",
    "opening": "期初积分",
    "adjustment": "调整",
}


@dataclass(frozen=True)
class RegisterLine:
    seq: int
    created_at: datetime
    kind: str
    scheme: str
    household: str
    resident: str
    category: str
    memo: str
    score_delta: int
    points: int  # signed change of the subject's balance (lots and owed)


def month_register(session: Session, *, village: Village, month: str) -> list[RegisterLine]:
    """Return the entries written in `month` (YYYY-MM, Beijing time) in chain order: what
    happened that month, redemptions and closes included (not the month an act was scored)."""
    subject_kinds = [AccountKind.LOT.value, AccountKind.OWED.value]
    moved = (
        select(Posting.entry_id, func.sum(Posting.amount).label("points"))
        .join(
            Account,
            and_(Account.id == Posting.account_id, Account.village_id == Posting.village_id),
        )
        .where(Posting.village_id == village.id, Account.kind.in_(subject_kinds))
        .group_by(Posting.entry_id)
        .subquery()
    )
    rows = session.execute(
        select(JournalEntry, Household.number, Resident.name, Scheme.name, moved.c.points)
        .outerjoin(
            Household,
            and_(
                Household.id == JournalEntry.household_id,
                Household.village_id == JournalEntry.village_id,
            ),
        )
        .outerjoin(
            Resident,
            and_(
                Resident.id == JournalEntry.resident_id,
                Resident.village_id == JournalEntry.village_id,
            ),
        )
        .outerjoin(
            Scheme,
            and_(Scheme.id == JournalEntry.scheme_id, Scheme.village_id == JournalEntry.village_id),
        )
        .outerjoin(moved, moved.c.entry_id == JournalEntry.id)
        .where(
            JournalEntry.village_id == village.id,
            JournalEntry.created_at >= period_end_utc("month", previous_period_key("month", month)),
            JournalEntry.created_at < period_end_utc("month", month),
        )
        .order_by(JournalEntry.seq)
    ).all()
    return [
        RegisterLine(
            seq=e.seq,
            created_at=e.created_at,
            kind=KIND_TEXT.get(e.kind, e.kind),
            scheme=scheme or "",
            household=number or "",
            resident=name or "",
            category=e.category or "",
            memo=e.memo or "",
            score_delta=e.score_delta,
            points=int(points or 0),
        )
        for e, number, name, scheme, points in rows
    ]
