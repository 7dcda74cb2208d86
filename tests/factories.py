"""Row factories for tests: small, explicit, flushing (never committing)."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from points.models import Group, Household, Resident, Scheme, Village
from points.models.catalog import ClosePolicy, SubjectKind
from points.periods import PeriodKind

_n = itertools.count(1)


def make_village(session: Session, code: str | None = None, **kw) -> Village:
    code = code or f"v{next(_n)}"
    village = Village(
        code=code,
        name=kw.pop("name", f"{code}村"),
        town=kw.pop("town", "城关镇"),
        county=kw.pop("county", "示范县"),
        **kw,
    )
    session.add(village)
    session.flush()
    return village


def make_group(session: Session, village: Village, name: str | None = None) -> Group:
    group = Group(village_id=village.id, name=name or f"第{next(_n)}组")
    session.add(group)
    session.flush()
    return group


def make_household(
    session: Session, village: Village, group: Group | None = None, members: int = 2
) -> Household:
    group = group or make_group(session, village)
    home = Household(village_id=village.id, group_id=group.id, number=f"{next(_n):04d}")
    session.add(home)
    session.flush()
    for i in range(members):
        person = Resident(
            village_id=village.id, household_id=home.id, name=f"村民{home.number}-{i}"
        )
        session.add(person)
        session.flush()
        if i == 0:
            home.head_id = person.id
    session.flush()
    return home


def make_scheme(session: Session, village: Village, code: str = "household", **kw) -> Scheme:
    defaults = dict(
        name="户积分",
        subject_kind=SubjectKind.HOUSEHOLD,
        period_kind=PeriodKind.QUARTER,
        close_policy=ClosePolicy.CARRY,
        base_score=0,
        redemption_threshold=0,
        notice_days=7,
        redeemable=True,
    )
    defaults.update(kw)
    scheme = Scheme(village_id=village.id, code=code, **defaults)
    session.add(scheme)
    session.flush()
    return scheme


def make_user(
    session: Session,
    village: Village,
    role: str,
    *,
    group=None,
    resident=None,
    name: str | None = None,
):
    """Create a user holding `role` in the village; return its Actor (as the API would)."""
    from points.models import RoleAssignment, User
    from points.org.access import load_actor

    user = User(
        username=f"{role}{next(_n)}",
        display_name=name or role,
        resident_id=resident.id if resident else None,
    )
    if role != "resident":
        user.roles.append(
            RoleAssignment(role=role, village_id=village.id, group_id=group.id if group else None)
        )
    session.add(user)
    session.flush()
    return load_actor(session, user.id)


def adopt_catalog(
    session: Session, scheme: Scheme, rules: list[dict], *, now, adopted_on=None, categories=None
):
    """Adopt a catalog version for the scheme from rule dicts (rules.rule_from_dict form)."""
    from datetime import date

    from points import catalog
    from points.catalog.rules import rule_from_dict

    draft = catalog.create_draft(
        session,
        scheme=scheme,
        rules=[rule_from_dict(r) for r in rules],
        title="测试积分标准",
        actor_id=None,
        now=now,
        categories=categories,
    )
    return catalog.adopt(
        session,
        version=draft,
        body="村民代表大会",
        adopted_on=adopted_on or date(2026, 1, 1),
        actor_id=None,
        now=now,
        effective_from=adopted_on,
    )
