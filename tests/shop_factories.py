"""Row factories for the points shop tests: staff actors, a store with goods on the shelf."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from points import ledger, shop
from points.models import Good, Household, Scheme, Store, User, Village
from points.models.org import Role
from points.org.access import Actor, Grant

_n = itertools.count(1)


def make_actor(session: Session, village: Village, role: str = Role.CLERK) -> Actor:
    """Create a staff user holding `role` in the village; return it as the domain sees it."""
    user = User(username=f"{role}-{next(_n)}", display_name=f"{role} 测试")
    session.add(user)
    session.flush()
    return Actor(user_id=user.id, name=user.display_name, grants=(Grant(role, village.id),))


def resident_actor(session: Session, household: Household) -> Actor:
    """Create a sign-in user for the household's head; return it as a resident Actor."""
    user = User(display_name="村民", resident_id=household.head_id)
    session.add(user)
    session.flush()
    return Actor(
        user_id=user.id,
        name=user.display_name,
        grants=(),
        resident_id=household.head_id,
        household_id=household.id,
        village_id=household.village_id,
    )


GOODS = (("肥皂", 5, "块"), ("洗衣粉", 20, "袋"), ("大米", 50, "袋"), ("食用油", 85, "桶"))


def make_store(
    session: Session, village: Village, now, *, stock: int = 20, goods=GOODS, name="村积分超市"
) -> tuple[Store, dict[str, Good]]:
    """Open a store with goods, each with `stock` on the shelf (donated)."""
    store = shop.create_store(session, village=village, name=name, now=now)
    made = {}
    for good_name, price, unit in goods:
        good = shop.create_good(
            session, store=store, name=good_name, price=price, unit=unit, now=now
        )
        if stock:
            shop.move_stock(
                session,
                good=good,
                kind="donation",
                quantity=stock,
                actor_id=None,
                now=now,
                source="县供销社",
            )
        made[good_name] = good
    return store, made


def fund(session: Session, scheme: Scheme, household: Household, points: int, now, key=None):
    """Award the household `points` in the scheme's current period."""
    return ledger.award(
        session,
        scheme=scheme,
        subject_id=household.id,
        points=points,
        idem_key=key or f"fund:{household.id}:{next(_n)}",
        actor_id=None,
        now=now,
        memo="测试加分",
    )
