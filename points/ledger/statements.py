"""Read models over the ledger: a subject's entries with reasons, schemes, town aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, case, func, inspect, select
from sqlalchemy.orm import Session, aliased

from points.errors import NotFoundError
from points.ledger import journal as ledger
from points.models import Account, Claim, Household, JournalEntry, Posting, Scheme, Village
from points.periods import local_date, period_key


@dataclass(frozen=True)
class StatementLine:
    """One entry as a household reads it: what changed for them, and why."""

    id: int
    seq: int
    kind: str
    scheme_id: int | None
    period_key: str | None
    month: str | None
    amount: int
    score_delta: int
    category: str | None
    memo: str
    reverses_id: int | None
    reversed_by: int | None
    created_at: datetime
    hash: str
    occurred_on: date | None = None  # the day of the deed, for entries posted from a claim


def get_scheme(session: Session, *, village: Village, code: str) -> Scheme:
    """Return the village's scheme with this code; raise NotFoundError."""
    if "schemes" not in inspect(village).unloaded:
        # Loaded with the village (org.get_village): no round trip.
        scheme = next((s for s in village.schemes if s.code == code), None)
        if scheme is None:
            raise NotFoundError(f"本村没有积分方案 {code}")
        return scheme
    scheme = session.execute(
        select(Scheme).where(Scheme.village_id == village.id, Scheme.code == code)
    ).scalar_one_or_none()
    if scheme is None:
        raise NotFoundError(f"本村没有积分方案 {code}")
    return scheme


def list_schemes(session: Session, *, village: Village) -> list[Scheme]:
    """Return the village's schemes."""
    return list(
        session.execute(
            select(Scheme).where(Scheme.village_id == village.id).order_by(Scheme.id)
        ).scalars()
    )


def subject_lines(
    session: Session,
    *,
    scheme: Scheme,
    subject_id: int,
    period: str | None = None,
    limit: int = 200,
) -> list[StatementLine]:
    """Return the subject's entries in a scheme, newest first, with the change to its points."""
    subject = ledger.Subject.of(scheme, subject_id)
    column = JournalEntry.household_id if subject.household_id else JournalEntry.resident_id
    subject_amount = (
        select(func.coalesce(func.sum(Posting.amount), 0))
        .join(
            Account,
            and_(Account.id == Posting.account_id, Account.village_id == Posting.village_id),
        )
        .where(
            Posting.entry_id == JournalEntry.id,
            Posting.village_id == JournalEntry.village_id,
            Account.kind.in_(("lot", "owed")),
        )
        .scalar_subquery()
    )
    reversal = aliased(JournalEntry)
    reversed_by = (
        select(reversal.id)
        .where(
            reversal.reverses_id == JournalEntry.id, reversal.village_id == JournalEntry.village_id
        )
        .scalar_subquery()
    )
    stmt = (
        select(JournalEntry, subject_amount, reversed_by, Claim.occurred_on)
        .outerjoin(
            Claim,
            and_(Claim.id == JournalEntry.claim_id, Claim.village_id == JournalEntry.village_id),
        )
        .where(JournalEntry.scheme_id == scheme.id, column == subject_id)
        .order_by(JournalEntry.seq.desc())
        .limit(limit)
    )
    if period:
        stmt = stmt.where((JournalEntry.period_key == period) | (JournalEntry.month == period))
    return [
        StatementLine(
            id=e.id,
            seq=e.seq,
            kind=e.kind,
            scheme_id=e.scheme_id,
            period_key=e.period_key,
            month=e.month,
            amount=int(amount),
            score_delta=e.score_delta,
            category=e.category,
            memo=e.memo,
            reverses_id=e.reverses_id,
            reversed_by=rev,
            created_at=e.created_at,
            hash=e.hash,
            occurred_on=occurred,
        )
        for e, amount, rev, occurred in session.execute(stmt)
    ]


def balance_view(
    session: Session, *, scheme: Scheme, subject_id: int, now: datetime, period: str | None = None
) -> dict:
    """Return balance, owed, open lots and the period score of a subject, as plain values."""
    period = period or period_key(scheme.period_kind, local_date(now))
    bal = ledger.get_balance(session, scheme=scheme, subject_id=subject_id)
    score = ledger.period_score(session, scheme=scheme, subject_id=subject_id, period=period)
    return {
        "scheme": scheme.code,
        "period": period,
        "available": bal.available,
        "owed": bal.owed,
        "score": score,
        "lots": [{"period": p, "balance": b} for p, b in bal.lots],
    }


def town_summary(session: Session, *, town: str, month: str) -> list[dict]:
    """Return each village of a town: households, participation and totals (no personal data).

    One statement: per-village aggregates (grouped by village_id, so that on a Citus cluster
    each is one distributed query run on every worker at once, decision 0018) joined to the
    town's villages; the month's rows are read through `ix_journal_entries_village_month`.
    """
    town_ids = select(Village.id).where(Village.town == town)
    households = (
        select(Household.village_id, func.count().label("n"))
        .where(Household.village_id.in_(town_ids))
        .group_by(Household.village_id)
        .subquery()
    )
    award, deduction = JournalEntry.kind == "award", JournalEntry.kind == "deduction"
    month_rows = (
        select(
            JournalEntry.village_id,
            func.count(func.distinct(case((award, JournalEntry.household_id)))).label("active"),
            func.coalesce(func.sum(case((award, JournalEntry.score_delta), else_=0)), 0).label(
                "awarded"
            ),
            func.coalesce(func.sum(case((deduction, -JournalEntry.score_delta), else_=0)), 0).label(
                "deducted"
            ),
        )
        .where(JournalEntry.village_id.in_(town_ids), JournalEntry.month == month)
        .group_by(JournalEntry.village_id)
        .subquery()
    )
    redeemed = (
        select(JournalEntry.village_id, func.sum(Posting.amount).label("redeemed"))
        .join(
            Posting,
            and_(
                Posting.entry_id == JournalEntry.id, Posting.village_id == JournalEntry.village_id
            ),
        )
        .join(
            Account,
            and_(Account.id == Posting.account_id, Account.village_id == Posting.village_id),
        )
        .where(
            JournalEntry.village_id.in_(town_ids),
            JournalEntry.month == month,
            Account.kind == "redemptions",
        )
        .group_by(JournalEntry.village_id)
        .subquery()
    )
    zero = 0
    rows = session.execute(
        select(
            Village.code,
            Village.name,
            func.coalesce(households.c.n, zero),
            func.coalesce(month_rows.c.active, zero),
            func.coalesce(month_rows.c.awarded, zero),
            func.coalesce(month_rows.c.deducted, zero),
            func.coalesce(redeemed.c.redeemed, zero),
        )
        .outerjoin(households, households.c.village_id == Village.id)
        .outerjoin(month_rows, month_rows.c.village_id == Village.id)
        .outerjoin(redeemed, redeemed.c.village_id == Village.id)
        .where(Village.town == town)
        .order_by(Village.code)
    ).all()
    return [
        {
            "code": code,
            "name": name,
            "households": int(n),
            "active_households": int(act),
            "participation_rate": round(int(act) / n, 4) if n else 0.0,
            "awarded": int(aw),
            "deducted": int(de),
            "redeemed": int(re),
        }
        for code, name, n, act, aw, de, re in rows
    ]
