"""The anomaly report: patterns a village's supervisors (村务监督委员会) should look at.

Nothing here is a verdict: it lists awards per recorder, a recorder's awards concentrated on
few households (优亲厚友), the same recorder–approver pair again and again, and bursts of
claims just before a redemption window opens.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from points.models import Claim, Household, User, Village
from points.periods import PeriodKind, next_period_start, period_key, period_start

CONCENTRATION_SHARE = 0.5  # top 3 households hold half of a recorder's points…
CONCENTRATION_MIN_CLAIMS = 10  # …among at least this many claims
PAIR_SHARE = 0.8  # one approver handles 80% of a recorder's reviewed claims
BURST_DAYS = 7


def anomaly_report(
    session: Session, *, village: Village, month: str, redemption_days: int = 14
) -> dict:
    """Return the report for a month (YYYY-MM) of claims recorded in the village."""
    start = period_start(PeriodKind.MONTH, month)
    end = next_period_start(PeriodKind.MONTH, month)
    claims = (
        session.execute(
            select(Claim).where(
                Claim.village_id == village.id,
                Claim.occurred_on >= start,
                Claim.occurred_on < end,
                Claim.points > 0,
            )
        )
        .scalars()
        .all()
    )
    names = {u.id: u.display_name for u in session.execute(select(User)).scalars()}
    numbers = dict(
        session.execute(
            select(Household.id, Household.number).where(Household.village_id == village.id)
        ).all()
    )

    by_recorder: dict[int, list[Claim]] = defaultdict(list)
    for c in claims:
        if c.recorded_by is not None:  # automatic claims: the scheduler is no recorder to watch
            by_recorder[c.recorded_by].append(c)
    recorders, concentration, pairs = [], [], []
    for user_id, items in sorted(by_recorder.items()):
        total = sum(c.points for c in items)
        recorders.append(
            {
                "recorder": names.get(user_id, str(user_id)),
                "claims": len(items),
                "points": total,
                "households": len({c.household_id for c in items}),
            }
        )
        per_home = Counter()
        for c in items:
            per_home[c.household_id] += c.points
        top = per_home.most_common(3)
        share = sum(p for _, p in top) / total if total else 0
        if len(items) >= CONCENTRATION_MIN_CLAIMS and share >= CONCENTRATION_SHARE:
            concentration.append(
                {
                    "recorder": names.get(user_id, str(user_id)),
                    "share": round(share, 3),
                    "households": [numbers.get(h, str(h)) for h, _ in top],
                }
            )
        reviewed = Counter(c.reviewed_by for c in items if c.reviewed_by)
        if reviewed:
            approver, count = reviewed.most_common(1)[0]
            if count >= 5 and count / sum(reviewed.values()) >= PAIR_SHARE:
                pairs.append(
                    {
                        "recorder": names.get(user_id, str(user_id)),
                        "approver": names.get(approver, str(approver)),
                        "claims": count,
                    }
                )
    return {
        "month": month,
        "recorders": recorders,
        "concentration": concentration,
        "pairs": pairs,
        "bursts": _bursts(claims, start, end, redemption_days),
    }


def _bursts(claims, start: date, end: date, redemption_days: int) -> list[dict]:
    """Compare claims recorded in the week before each redemption window with the average."""
    if not claims:
        return []
    days = (end - start).days
    per_day = len(claims) / days
    out = []
    quarter = period_key(PeriodKind.QUARTER, start)
    window_opens = next_period_start(PeriodKind.QUARTER, quarter) - timedelta(days=redemption_days)
    lo = window_opens - timedelta(days=BURST_DAYS)
    if start <= window_opens and lo < end:
        count = sum(1 for c in claims if lo <= c.created_at.date() < window_opens)
        if per_day and count > 3 * per_day * BURST_DAYS and count >= 10:
            out.append(
                {
                    "before": window_opens.isoformat(),
                    "claims": count,
                    "usual": round(per_day * BURST_DAYS, 1),
                }
            )
    return out
