"""Orders placed on a phone from a store's counter code, handed over at the counter.

The counter code only opens the store's page: the resident's own sign-in authorises the order.
Nothing is reserved when ordering (the checks are repeated then only to refuse early); the
points are spent and the stock taken when the clerk marks the order collected, by the same
`redeem` as a scanned code, and an order is collected at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from points.errors import NotFoundError, OrderStateError, PermissionDeniedError, ValidationError
from points.models import Household, Redemption, ShopOrder, ShopOrderItem, Store, Village
from points.models.org import Role
from points.models.shop import OrderState
from points.org.access import Actor
from points.shop.goods import MAX_ID
from points.shop.redemption import BasketLine, preview, redeem, refusal_error


def create_order(
    session: Session,
    *,
    village: Village,
    store: Store,
    actor: Actor,
    basket: Sequence[BasketLine],
    now: datetime,
) -> ShopOrder:
    """Place a resident's order at a store. Refuses now what collecting would refuse now;
    nothing is reserved: the points are spent when the clerk hands the goods over."""
    if not actor.has(village, Role.RESIDENT) or actor.household_id is None:
        raise PermissionDeniedError("只有本村村民可以下单兑换")
    household = session.get(Household, actor.household_id)
    result = preview(
        session, village=village, store=store, household=household, basket=basket, now=now
    )
    if not result.lines:
        raise ValidationError("请至少选择一件商品", errors={"items": ["不能为空"]})
    if result.refusal is not None:
        raise refusal_error(result.refusal)
    order = ShopOrder(
        village_id=village.id,
        store_id=store.id,
        household_id=household.id,
        placed_by=actor.user_id,
        state=OrderState.PENDING,
        created_at=now,
    )
    for line in result.lines:
        order.items.append(
            ShopOrderItem(village_id=village.id, good_id=line.good_id, quantity=line.quantity)
        )
    session.add(order)
    session.flush()
    return order


def list_orders(
    session: Session,
    *,
    village: Village,
    actor: Actor,
    state: str | None = None,
    store_id: int | None = None,
    limit: int = 200,
) -> list[ShopOrder]:
    """Return orders the actor may see: staff every order, a resident their household's."""
    stmt = select(ShopOrder).where(ShopOrder.village_id == village.id)
    if not actor.has(village, Role.CLERK, Role.ADMIN):
        stmt = stmt.where(ShopOrder.household_id == (actor.household_id or -1))
    if state is not None:
        stmt = stmt.where(ShopOrder.state == state)
    if store_id is not None:
        stmt = stmt.where(ShopOrder.store_id == store_id)
    return list(session.execute(stmt.order_by(ShopOrder.id).limit(limit)).scalars())


def get_order(session: Session, *, village: Village, order_id: int) -> ShopOrder:
    """Return an order of the village; raise NotFoundError."""
    order = session.get(ShopOrder, order_id) if 0 < order_id <= MAX_ID else None
    if order is None or order.village_id != village.id:
        raise NotFoundError("找不到该订单")
    return order


def collect_order(
    session: Session,
    *,
    village: Village,
    order_id: int,
    actor: Actor,
    now: datetime,
    proxy: bool = False,
    proxy_note: str = "",
) -> Redemption:
    """Hand a pending order over: redeem its items now, at today's prices, once."""
    order = get_order(session, village=village, order_id=order_id)
    basket = [BasketLine(item.good_id, item.quantity) for item in order.items]
    return redeem(
        session,
        village=village,
        store=session.get(Store, order.store_id),
        basket=basket,
        actor=actor,
        now=now,
        order_id=order.id,
        proxy=proxy,
        proxy_note=proxy_note,
    )


def cancel_order(
    session: Session, *, village: Village, order_id: int, actor: Actor, now: datetime
) -> ShopOrder:
    """Withdraw a pending order: by the household that placed it, or by a clerk."""
    order = get_order(session, village=village, order_id=order_id)
    own = actor.has(village, Role.RESIDENT) and actor.household_id == order.household_id
    if not own and not actor.has(village, Role.CLERK):
        raise PermissionDeniedError("只能取消自己家的订单")
    changed = session.execute(
        update(ShopOrder)
        .where(ShopOrder.id == order.id, ShopOrder.state == OrderState.PENDING)
        .values(state=OrderState.CANCELLED, closed_at=now, closed_by=actor.user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise OrderStateError()
    session.refresh(order)
    return order
