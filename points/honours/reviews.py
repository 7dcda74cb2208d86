"""The branch's 民主评议 of party members (the yearly input to 评星定级), and the town's counts.

The branch secretary (an admin of the 村两委) records one score (0–100) or grade per member
per year; recording again replaces it until the year's party list is published.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from points.errors import ConflictError, NotFoundError, ValidationError
from points.honours.designate import live_list, redraft_list, scheme_of
from points.honours.rules import CADENCES, GRADES, STARS, honour_rules
from points.models import Resident, Scheme, Village
from points.models.honours import (
    HonourEntry,
    HonourKind,
    HonourList,
    HonourStatus,
    PartyReview,
)
from points.models.org import Role
from points.org.access import Actor


def record_review(
    session: Session,
    *,
    village: Village,
    actor: Actor,
    resident_id: int,
    year: int,
    now: datetime,
    score: int | None = None,
    grade: str | None = None,
) -> PartyReview:
    """Record (or replace) a member's 民主评议 for a year: a 0–100 score or a grade."""
    actor.require(village, Role.ADMIN)
    person = session.get(Resident, resident_id)
    if person is None or person.village_id != village.id or not person.is_party_member:
        raise NotFoundError("找不到该党员")
    if score is None and not grade:
        raise ValidationError("请填写评议得分或等次", errors={"score": ["不能为空"]})
    if score is not None and not 0 <= score <= 100:
        raise ValidationError("评议得分应在 0–100 之间", errors={"score": ["应在 0–100"]})
    if grade and grade not in GRADES:
        raise ValidationError("评议等次不对", errors={"grade": [f"应为{'、'.join(GRADES)}"]})
    party = live_list(session, village=village, kind=HonourKind.PARTY_STARS, year=year)
    if party is not None and party.status != HonourStatus.DRAFT:
        raise ConflictError("本年度党员评星已审定，评议不能再改", reason="wrong_status")
    row = session.execute(
        select(PartyReview).where(
            PartyReview.village_id == village.id,
            PartyReview.resident_id == person.id,
            PartyReview.year == year,
        )
    ).scalar_one_or_none()
    if row is None:
        row = PartyReview(village_id=village.id, resident_id=person.id, year=year)
        session.add(row)
    row.score, row.grade = score, grade or None
    row.recorded_by, row.recorded_at = actor.user_id, now
    session.flush()
    if party is not None:
        # The year's draft follows the review at once (its maker is now the secretary).
        redraft_list(session, item=party, now=now, actor_id=actor.user_id)
    return row


def set_rules(
    session: Session, *, village: Village, actor: Actor, scheme: Scheme, rules: dict
) -> dict:
    """Save a scheme's honour rules (weights, grade caps, 表彰 sizes); return them filled in."""
    actor.require(village, Role.ADMIN)
    if scheme.village_id != village.id:
        raise NotFoundError("找不到该积分方案")
    limits = {
        "party_weight": (0, 100),
        "review_weight": (0, 100),
        "award_top_n": (0, 50),
        "award_min_stars": (0, 5),
    }
    saved = dict(scheme.honour_rules or {})
    for key, (low, high) in limits.items():
        value = rules.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(f"应在 {low}–{high} 之间", errors={key: [f"应在 {low}–{high}"]})
        saved[key] = value
    caps = rules.get("grade_caps")
    if caps is not None:
        if any(
            g not in GRADES or not isinstance(n, int) or not 0 <= n <= 5 for g, n in caps.items()
        ):
            raise ValidationError("等次封顶星级应为 0–5", errors={"grade_caps": ["应为 0–5"]})
        saved["grade_caps"] = caps
    cadence = rules.get("household_cadence")
    if cadence is not None:
        if cadence not in CADENCES:
            raise ValidationError(
                "评定周期应为按年度或按积分周期",
                errors={"household_cadence": ["应为 year 或 period"]},
            )
        saved["household_cadence"] = cadence
    filled = honour_rules(saved)
    if filled["party_weight"] + filled["review_weight"] <= 0:
        raise ValidationError("两项权重不能都为 0", errors={"party_weight": ["不能都为 0"]})
    scheme.honour_rules = saved
    session.flush()
    return filled


def set_household_cadence(
    session: Session, *, village: Village, actor: Actor, cadence: str
) -> Scheme:
    """Set how often the household scheme designates 星级文明户 ('year' or 'period');
    return the scheme. Lists already drafted keep their cadence."""
    actor.require(village, Role.ADMIN)
    scheme = scheme_of(session, village, "household")
    if scheme is None:
        raise NotFoundError("本村没有农户积分方案")
    set_rules(
        session, village=village, actor=actor, scheme=scheme, rules={"household_cadence": cadence}
    )
    return scheme


def list_reviews(session: Session, *, village: Village, year: int) -> dict[int, PartyReview]:
    """Return {resident id: review} of a year."""
    return {
        r.resident_id: r
        for r in session.execute(
            select(PartyReview).where(
                PartyReview.village_id == village.id, PartyReview.year == year
            )
        ).scalars()
    }


def town_counts(session: Session, *, town: str, year: int) -> list[dict]:
    """Return each village of a town: how many honours it published for a year, by kind and
    star (counts only, no names)."""
    rows = session.execute(
        select(
            Village.code,
            Village.name,
            HonourList.kind,
            HonourEntry.title,
            HonourEntry.stars,
            func.count(HonourEntry.id),
        )
        .join(HonourList, HonourList.village_id == Village.id)
        .join(
            HonourEntry,
            (HonourEntry.list_id == HonourList.id)
            & (HonourEntry.village_id == HonourList.village_id),
        )
        .where(
            Village.town == town,
            HonourList.year == year,
            HonourList.status == HonourStatus.PUBLISHED,
            HonourEntry.removed.is_(False),
        )
        .group_by(Village.code, Village.name, HonourList.kind, HonourEntry.title, HonourEntry.stars)
    ).all()
    villages = {
        code: {"code": code, "name": name, "stars": [0] * 6, "party_stars": [0] * 6, "titles": {}}
        for code, name in session.execute(
            select(Village.code, Village.name).where(Village.town == town).order_by(Village.code)
        ).all()
    }
    for code, _name, kind, title, stars, n in rows:
        row = villages[code]
        if title == STARS and kind == HonourKind.HOUSEHOLD_STARS:
            row["stars"][stars or 0] += n
        elif title == STARS:
            row["party_stars"][stars or 0] += n
        else:
            row["titles"][title] = row["titles"].get(title, 0) + n
    return list(villages.values())
