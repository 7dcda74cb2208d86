"""The party track, readable: a member's score, stars and history, and the branch's list.

Party members see their own standing; the 村两委 and the review group see the whole branch.
Stars follow the scheme's thresholds for the period's score, none under a 一票否决.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from points import ledger
from points.boards.monthly import subject_stars
from points.claims.veto import vetoed
from points.errors import NotFoundError, PermissionDeniedError
from points.ledger import statements
from points.models import Resident, Scheme, Village
from points.models.org import Role
from points.org.access import Actor
from points.periods import local_date, next_period_start, period_key

BRANCH_READERS = (Role.ADMIN, Role.REVIEWER)


def party_scheme(session: Session, *, village: Village) -> Scheme:
    """Return the village's party scheme (personal, resident subjects); raise NotFoundError."""
    scheme = session.execute(
        select(Scheme)
        .where(Scheme.village_id == village.id, Scheme.subject_kind == "resident")
        .order_by(Scheme.id)
        .limit(1)
    ).scalar_one_or_none()
    if scheme is None:
        raise NotFoundError("本村没有党员积分方案")
    return scheme


def _standing(session, scheme: Scheme, person: Resident, period: str, barred: dict) -> dict:
    return {
        "resident_id": person.id,
        "household_id": person.household_id,
        "name": person.name,
        "branch": person.party_branch,
        "period": period,
        "score": ledger.period_score(session, scheme=scheme, subject_id=person.id, period=period),
        "stars": subject_stars(session, scheme=scheme, subject_id=person.id, period=period),
        "vetoed": barred.get(person.id),
    }


def _barred(session: Session, scheme: Scheme, period: str) -> dict:
    last_day = next_period_start(scheme.period_kind, period) - timedelta(days=1)
    return vetoed(session, scheme=scheme, on=last_day)


def member_standing(
    session: Session,
    *,
    village: Village,
    resident_id: int,
    actor: Actor,
    now: datetime,
    period: str | None = None,
    limit: int = 100,
) -> dict:
    """Return a party member's score, stars and history (the member, or branch readers)."""
    person = session.get(Resident, resident_id)
    if person is None or person.village_id != village.id or not person.is_party_member:
        raise NotFoundError("找不到该党员")
    if actor.resident_id != person.id and not actor.has(village, *BRANCH_READERS):
        raise PermissionDeniedError("只能查看本人的党员积分")
    scheme = party_scheme(session, village=village)
    period = period or period_key(scheme.period_kind, local_date(now))
    out = _standing(session, scheme, person, period, _barred(session, scheme, period))
    out["balance"] = statements.balance_view(
        session, scheme=scheme, subject_id=person.id, now=now, period=period
    )
    out["entries"] = statements.subject_lines(
        session, scheme=scheme, subject_id=person.id, limit=limit
    )
    return out


def branch_standings(
    session: Session, *, village: Village, actor: Actor, now: datetime, period: str | None = None
) -> list[dict]:
    """Return every active party member's score and stars, best first (branch readers only)."""
    actor.require(village, *BRANCH_READERS)
    scheme = party_scheme(session, village=village)
    period = period or period_key(scheme.period_kind, local_date(now))
    barred = _barred(session, scheme, period)
    members = session.execute(
        select(Resident)
        .where(
            Resident.village_id == village.id,
            Resident.is_party_member.is_(True),
            Resident.active.is_(True),
        )
        .order_by(Resident.id)
    ).scalars()
    rows = [_standing(session, scheme, p, period, barred) for p in members]
    return sorted(rows, key=lambda r: (-r["score"], r["resident_id"]))
