"""Group and event awards: one claim for a group (小组被评为卫生示范组) that expands to each member
household — or, on a party (per-person) scheme, to each party member who took part (主题党日) —
with one notice row, one review and one objection for all of them.

The claims are recorded as an event batch (`record_batch`: the rules engine decides each one,
caps and once-only limits are reserved per household, all or nothing) whose batch is marked
`grouped`; review, rejection and an upheld objection then act on the whole group (workflow),
and the public notice shows it as one row. Each household's claim posts on its own, exactly once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from points.claims.workflow import record_batch
from points.errors import NotFoundError, ValidationError
from points.models import Group, Household, Scheme, Village
from points.models.claims import Claim, ClaimBatch
from points.org.access import Actor


def group_households(session: Session, *, village: Village, group_id: int) -> list[int]:
    """Return the active households of a group (小组) of the village; raise NotFoundError."""
    group = session.get(Group, group_id)
    if group is None or group.village_id != village.id:
        raise NotFoundError("找不到该小组")
    return list(
        session.execute(
            select(Household.id)
            .where(Household.group_id == group.id, Household.active.is_(True))
            .order_by(Household.id)
        ).scalars()
    )


def record_group(
    session: Session,
    *,
    village: Village,
    scheme: Scheme,
    actor: Actor,
    title: str,
    rule_code: str,
    occurred_on: date,
    household_ids: list[int] | None = None,
    now: datetime,
    description: str = "",
    has_evidence: bool = False,
    members: dict[int, int] | None = None,
    people: list[tuple[int, int]] | None = None,
) -> tuple[ClaimBatch, list[Claim]]:
    """Record one award for a group or event, expanded to each member household (household
    scheme: `household_ids`, with `members`, the person who took part per household id, named
    on the household's history) or to each person (party scheme: `people`, (household id,
    resident id) pairs, each a party member). `has_evidence`: the award carries its proof (an
    event's attendance list). Caps, locks and review are record_batch's, per subject."""
    if scheme.subject_kind == "household":
        if people is not None or not household_ids:
            raise ValidationError("集体奖励须列出农户", errors={"household_ids": ["必填"]})
        subjects = [(h, (members or {}).get(h)) for h in household_ids]
    else:
        if household_ids is not None or members is not None or not people:
            raise ValidationError("党员积分的集体奖励须列出党员本人", errors={"people": ["必填"]})
        subjects = [(h, r) for h, r in people]
    batch, claims = record_batch(
        session,
        village=village,
        scheme=scheme,
        actor=actor,
        title=title,
        rule_code=rule_code,
        occurred_on=occurred_on,
        subjects=subjects,
        now=now,
        description=description,
        has_evidence=has_evidence,
    )
    batch.grouped = True
    session.flush()
    return batch, claims
