"""Period statements (期末对账单): each household's figures for one closed period, from the ledger.

For a household and a closed period P the statement reads

    opening + awards (by category) + deductions + redemptions + expired + other = closing

where every amount is the entry's effect on the household's own accounts (its lots and what it
owes), so the figures are signed: awards add, the rest mostly take away. Each journal entry
counts in exactly one period: an expiry in the period whose close posted it (the chain range
recorded on the period row; expire_after_n expires older lots at a later close), every other
entry in its own `period_key` (a reversal carries the period of the entry it reverses). So
`opening` is the balance just after the previous period closed (the balance at the start of P
when the close ran on time) and P's closing is P+1's opening.

`score` is not balance: the scheme's base score plus awards minus deductions in P, as boards
and star ratings use it; `rank` orders the village's households by score (1, 2, 2, 4 …).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from points import ledger
from points.errors import ConflictError, NotFoundError, ValidationError
from points.models import (
    Account,
    CatalogVersion,
    Group,
    Household,
    JournalEntry,
    Period,
    Posting,
    Resident,
    Scheme,
    Village,
)
from points.models.catalog import CatalogStatus, SubjectKind
from points.models.cycles import PeriodStatus
from points.models.ledger import AccountKind, EntryKind
from points.periods import LOCAL_TZ, period_start

UNCATEGORISED = "其他"


@dataclass(frozen=True)
class HouseholdStatement:
    """One household's figures for the period; amounts are signed points (+ in, - out)."""

    household_id: int
    number: str
    head_name: str
    group_name: str
    opening: int
    awards: dict[str, int]
    deductions: int
    redemptions: int
    expired: int
    other: int
    closing: int
    score: int
    rank: int

    @property
    def awards_total(self) -> int:
        return sum(self.awards.values())


@dataclass(frozen=True)
class PeriodStatements:
    """The statements of one closed period of a scheme, with the ledger head they were read at."""

    village_code: str
    village_name: str
    scheme_code: str
    scheme_name: str
    period: str
    starts_on: date
    ends_on: date  # the last local date
    closed_at: datetime
    close_policy: str
    head: tuple[int, str]
    ranked: int  # households ranked
    categories: list[str]
    lines: list[HouseholdStatement] = field(default_factory=list)


def period_statements(
    session: Session,
    *,
    village: Village,
    period: str,
    scheme_code: str = "household",
    household_number: str | None = None,
) -> PeriodStatements:
    """Return every household's statement (or one's) for a closed period of a household scheme."""
    scheme = session.execute(
        select(Scheme).where(Scheme.village_id == village.id, Scheme.code == scheme_code)
    ).scalar_one_or_none()
    if scheme is None:
        raise NotFoundError(f"本村没有积分方案 {scheme_code}")
    if scheme.subject_kind != SubjectKind.HOUSEHOLD:
        raise ValidationError("期末对账单按户出具，请选择以户为单位的积分方案")
    row = session.execute(
        select(Period).where(Period.scheme_id == scheme.id, Period.key == period)
    ).scalar_one_or_none()
    if row is None or row.status != PeriodStatus.CLOSED:
        raise ConflictError(f"{period} 期尚未结算，结算后才能出具期末对账单", period=period)

    kind = scheme.period_kind
    target = period_start(kind, period)
    homes = _households(session, village.id, scheme.id, period)
    flows = _flows(session, scheme, _closes(session, scheme.id))
    scores = _scores(session, scheme, period)

    sums: dict[int, dict] = defaultdict(
        lambda: {
            "opening": 0,
            "awards": defaultdict(int),
            "deductions": 0,
            "redemptions": 0,
            "expired": 0,
            "other": 0,
        }
    )
    categories: set[str] = set()
    for household_id, bucket, category, stmt_period, amount in flows:
        start = _start_or_none(kind, stmt_period)
        if start is None or start > target:
            continue
        s = sums[household_id]
        if start < target:
            s["opening"] += amount
        elif bucket == "awards":
            s["awards"][category] += amount
            categories.add(category)
        else:
            s[bucket] += amount

    ranked = _ranks({h: scores.get(h, 0) + scheme.base_score for h in homes})
    order = _in_catalog_order(session, scheme, _last_day(row), categories)
    lines = []
    for household_id, (number, head_name, group_name) in homes.items():
        if household_number is not None and number != household_number:
            continue
        s = sums[household_id]
        awards = {c: s["awards"][c] for c in order if c in s["awards"]}
        moved = sum(awards.values()) + s["deductions"] + s["redemptions"] + s["expired"]
        lines.append(
            HouseholdStatement(
                household_id=household_id,
                number=number,
                head_name=head_name,
                group_name=group_name,
                opening=s["opening"],
                awards=awards,
                deductions=s["deductions"],
                redemptions=s["redemptions"],
                expired=s["expired"],
                other=s["other"],
                closing=s["opening"] + moved + s["other"],
                score=scores.get(household_id, 0) + scheme.base_score,
                rank=ranked[household_id],
            )
        )
    if household_number is not None and not lines:
        raise NotFoundError(f"本村没有户号为 {household_number} 的农户")
    return PeriodStatements(
        village_code=village.code,
        village_name=village.name,
        scheme_code=scheme.code,
        scheme_name=scheme.name,
        period=period,
        starts_on=row.starts_on,
        ends_on=_last_day(row),
        closed_at=row.closed_at,
        close_policy=row.close_policy or scheme.close_policy,
        head=ledger.chain_head(session, village.id),
        ranked=len(ranked),
        categories=order,
        lines=lines,
    )


def _in_catalog_order(
    session: Session, scheme: Scheme, last_day: date, seen: set[str]
) -> list[str]:
    """The award columns: every category of the catalog in force on the period's last day, in
    its order (a village's own 乡风文明 included, even at 0), then any other category an entry
    names (from an older catalog), sorted."""
    version = session.execute(
        select(CatalogVersion)
        .where(
            CatalogVersion.scheme_id == scheme.id,
            CatalogVersion.status != CatalogStatus.DRAFT,
            CatalogVersion.effective_from <= last_day,
            or_(CatalogVersion.effective_to.is_(None), CatalogVersion.effective_to > last_day),
        )
        .order_by(CatalogVersion.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()
    names = [c["name"] for c in version.category_rows] if version is not None else []
    return names + sorted(seen - set(names))


def _households(session, village_id: int, scheme_id: int, period: str) -> dict:
    """Households to state, in number order: the active ones and any with entries in the period."""
    with_entries = (
        select(JournalEntry.household_id)
        .where(JournalEntry.scheme_id == scheme_id, JournalEntry.period_key == period)
        .distinct()
    )
    rows = session.execute(
        select(Household.id, Household.number, Resident.name, Group.name)
        .join(Group, and_(Group.id == Household.group_id, Group.village_id == Household.village_id))
        .outerjoin(
            Resident,
            and_(Resident.id == Household.head_id, Resident.village_id == Household.village_id),
        )
        .where(
            Household.village_id == village_id,
            or_(Household.active.is_(True), Household.id.in_(with_entries)),
        )
        .order_by(Household.number)
    ).all()
    return {hid: (number, head or "", group) for hid, number, head, group in rows}


def _closes(session, scheme_id: int) -> list[tuple[str, int, int]]:
    """Each closed period's key and the chain range (exclusive, inclusive] of its close."""
    return [
        (key, lo, hi)
        for key, lo, hi in session.execute(
            select(Period.key, Period.close_from_seq, Period.close_to_seq).where(
                Period.scheme_id == scheme_id,
                Period.status == PeriodStatus.CLOSED,
                Period.close_to_seq > Period.close_from_seq,
            )
        ).all()
    ]


def _flows(session, scheme: Scheme, closes) -> list[tuple[int, str, str, str, int]]:
    """Rows (household, bucket, category, statement period, amount) summed per group."""
    original = aliased(JournalEntry)
    stmt_period = JournalEntry.period_key
    if closes:
        stmt_period = case(
            *[
                (
                    (JournalEntry.kind == EntryKind.EXPIRY.value)
                    & (JournalEntry.seq > lo)
                    & (JournalEntry.seq <= hi),
                    key,
                )
                for key, lo, hi in closes
            ],
            else_=JournalEntry.period_key,
        )
    rows = session.execute(
        select(
            Account.household_id,
            JournalEntry.kind,
            original.kind,
            JournalEntry.category,
            stmt_period.label("stmt_period"),
            func.sum(Posting.amount),
        )
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
        .outerjoin(
            original,
            and_(
                original.id == JournalEntry.reverses_id,
                original.village_id == JournalEntry.village_id,
            ),
        )
        .where(
            JournalEntry.village_id == scheme.village_id,
            JournalEntry.scheme_id == scheme.id,
            Account.kind.in_((AccountKind.LOT.value, AccountKind.OWED.value)),
        )
        .group_by(
            Account.household_id,
            JournalEntry.kind,
            original.kind,
            JournalEntry.category,
            stmt_period,
        )
    ).all()
    out = []
    for household_id, kind, original_kind, category, stmt_period_key, amount in rows:
        effective = original_kind if kind == EntryKind.REVERSAL else kind
        bucket = _BUCKETS.get(effective, "other")
        out.append((household_id, bucket, category or UNCATEGORISED, stmt_period_key, int(amount)))
    return out


_BUCKETS = {
    EntryKind.AWARD: "awards",
    EntryKind.DEDUCTION: "deductions",
    EntryKind.REDEMPTION: "redemptions",
    EntryKind.EXPIRY: "expired",
}


def _scores(session, scheme: Scheme, period: str) -> dict[int, int]:
    """Awards minus deductions in the period, per household (without the base score)."""
    return {
        hid: int(total)
        for hid, total in session.execute(
            select(JournalEntry.household_id, func.sum(JournalEntry.score_delta))
            .where(JournalEntry.scheme_id == scheme.id, JournalEntry.period_key == period)
            .group_by(JournalEntry.household_id)
        ).all()
        if hid is not None
    }


def _ranks(scores: dict[int, int]) -> dict[int, int]:
    """Competition ranking by score, highest first: equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(scores.items(), key=lambda kv: -kv[1])
    ranks, previous, rank = {}, None, 0
    for position, (hid, score) in enumerate(ordered, start=1):
        if score != previous:
            rank, previous = position, score
        ranks[hid] = rank
    return ranks


def _start_or_none(kind: str, key: str | None) -> date | None:
    if key is None:
        return None
    try:
        return period_start(kind, key)
    except ValueError:  # an entry of another period kind (the scheme's kind was changed)
        return None


def _last_day(row: Period) -> date:
    return (row.ends_at.astimezone(LOCAL_TZ) - timedelta(days=1)).date()
