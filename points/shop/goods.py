"""The points shop's shelves: stores, goods priced in points, stock movements and low stock.

Stock is changed only by a conditional `UPDATE … SET stock = stock + :d WHERE stock + :d >= 0`
(and `CHECK (stock >= 0)` behind it): two counters selling the last bag of rice cannot both
succeed, whatever Python read a moment earlier. Every change leaves a movement row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from points.errors import ConflictError, NotFoundError, ValidationError
from points.models import Good, Scheme, StockMovement, Store, Village
from points.models.catalog import SubjectKind
from points.models.shop import MovementKind, StoreKind

MAX_ID = 2**31 - 1  # ids are 32-bit: a larger one from a URL simply does not exist
MAX_PRICE = 100_000
MAX_QUANTITY = 100_000
# What staff may record by hand; redemption and cancellation movements come from redemptions.
MANUAL_KINDS = (MovementKind.DONATION, MovementKind.PURCHASE, MovementKind.ADJUSTMENT)


# --- stores ------------------------------------------------------------------------------------


def redeemable_scheme(session: Session, *, village: Village) -> Scheme:
    """Return the village's redeemable household scheme (`household` first when several)."""
    schemes = session.execute(
        select(Scheme)
        .where(
            Scheme.village_id == village.id,
            Scheme.redeemable.is_(True),
            Scheme.subject_kind == SubjectKind.HOUSEHOLD,
        )
        .order_by((Scheme.code != "household"), Scheme.id)
    ).scalars()
    scheme = next(iter(schemes), None)
    if scheme is None:
        raise ValidationError("本村没有可兑换的户积分方案，不能开设积分超市")
    return scheme


def list_stores(session: Session, *, village: Village, active_only: bool = False) -> list[Store]:
    """Return the village's stores, oldest first."""
    stmt = select(Store).where(Store.village_id == village.id)
    if active_only:
        stmt = stmt.where(Store.active.is_(True))
    return list(session.execute(stmt.order_by(Store.id)).scalars())


def get_store(session: Session, *, village: Village, store_id: int) -> Store:
    """Return a store of the village; raise NotFoundError."""
    store = session.get(Store, store_id) if 0 < store_id <= MAX_ID else None
    if store is None or store.village_id != village.id:
        raise NotFoundError("找不到该商店")
    return store


def create_store(
    session: Session,
    *,
    village: Village,
    name: str,
    now: datetime,
    kind: str = StoreKind.VILLAGE,
    address: str = "",
) -> Store:
    """Open a store (the village's 积分超市 or a designated private shop)."""
    name = _name(name, "商店名称")
    if kind not in set(StoreKind):
        raise ValidationError("商店类型只能是 village 或 private", errors={"kind": ["不支持"]})
    if session.execute(
        select(Store.id).where(Store.village_id == village.id, Store.name == name)
    ).first():
        raise ConflictError(f"商店“{name}”已存在")
    store = Store(
        village_id=village.id,
        scheme_id=redeemable_scheme(session, village=village).id,
        name=name,
        kind=kind,
        address=(address or "").strip(),
        active=True,
        created_at=now,
    )
    session.add(store)
    session.flush()
    return store


def update_store(session: Session, *, store: Store, **changes) -> Store:
    """Rename a store, change its kind or address, or close (active=False) / reopen it."""
    if "name" in changes:
        name = _name(changes["name"], "商店名称")
        clash = session.execute(
            select(Store.id).where(
                Store.village_id == store.village_id, Store.name == name, Store.id != store.id
            )
        ).first()
        if clash:
            raise ConflictError(f"商店“{name}”已存在")
        changes["name"] = name
    if "kind" in changes and changes["kind"] not in set(StoreKind):
        raise ValidationError("商店类型只能是 village 或 private", errors={"kind": ["不支持"]})
    for key, value in changes.items():
        setattr(store, key, value)
    session.flush()
    return store


# --- goods -------------------------------------------------------------------------------------


def list_goods(session: Session, *, store: Store, active_only: bool = False) -> list[Good]:
    """Return a store's goods by name."""
    stmt = select(Good).where(Good.store_id == store.id)
    if active_only:
        stmt = stmt.where(Good.active.is_(True))
    return list(session.execute(stmt.order_by(Good.id)).scalars())


def get_good(session: Session, *, village: Village, good_id: int) -> Good:
    """Return a good of the village; raise NotFoundError."""
    good = session.get(Good, good_id) if 0 < good_id <= MAX_ID else None
    if good is None or good.village_id != village.id:
        raise NotFoundError("找不到该商品")
    return good


def create_good(
    session: Session,
    *,
    store: Store,
    name: str,
    price: int,
    now: datetime,
    unit: str = "件",
    limit_per_period: int | None = None,
    low_stock_at: int = 5,
) -> Good:
    """Put a good on a store's list with no stock yet (stock arrives as movements)."""
    name = _name(name, "商品名称")
    _check_good_fields(price=price, limit_per_period=limit_per_period, low_stock_at=low_stock_at)
    if session.execute(select(Good.id).where(Good.store_id == store.id, Good.name == name)).first():
        raise ConflictError(f"本店已有商品“{name}”")
    good = Good(
        village_id=store.village_id,
        store_id=store.id,
        name=name,
        unit=(unit or "件").strip()[:16] or "件",
        price=price,
        stock=0,
        limit_per_period=limit_per_period,
        low_stock_at=low_stock_at,
        active=True,
        created_at=now,
    )
    session.add(good)
    session.flush()
    return good


def update_good(session: Session, *, good: Good, **changes) -> Good:
    """Change a good's name, unit, price, limit, low-stock level, or take it off the shelf.

    Stock is not among the fields: it changes only through movements.
    """
    if "stock" in changes:
        raise ValidationError(
            "库存只能通过入库、调整等库存变动修改", errors={"stock": ["不可直接修改"]}
        )
    _check_good_fields(**{k: v for k, v in changes.items() if k in _GOOD_NUMBERS})
    if "name" in changes:
        name = _name(changes["name"], "商品名称")
        clash = session.execute(
            select(Good.id).where(
                Good.store_id == good.store_id, Good.name == name, Good.id != good.id
            )
        ).first()
        if clash:
            raise ConflictError(f"本店已有商品“{name}”")
        changes["name"] = name
    for key, value in changes.items():
        setattr(good, key, value)
    session.flush()
    return good


def low_stock(session: Session, *, village: Village, store: Store | None = None) -> list[Good]:
    """Return goods on the shelf whose stock is at or below their low-stock level, emptiest first."""
    stmt = select(Good).where(
        Good.village_id == village.id, Good.active.is_(True), Good.stock <= Good.low_stock_at
    )
    if store is not None:
        stmt = stmt.where(Good.store_id == store.id)
    return list(session.execute(stmt.order_by(Good.stock, Good.id)).scalars())


# --- stock -------------------------------------------------------------------------------------


def move_stock(
    session: Session,
    *,
    good: Good,
    kind: str,
    quantity: int,
    actor_id: int | None,
    now: datetime,
    source: str = "",
    note: str = "",
) -> StockMovement:
    """Record a donation or purchase (quantity > 0) or an adjustment (either sign, not 0)."""
    if kind not in {k.value for k in MANUAL_KINDS}:
        raise ValidationError(
            "库存变动类型只能是 donation（捐赠）、purchase（采购）或 adjustment（调整）",
            errors={"kind": ["不支持"]},
        )
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity == 0:
        raise ValidationError("数量必须是非零整数", errors={"quantity": ["不能为 0"]})
    if abs(quantity) > MAX_QUANTITY:
        raise ValidationError("数量过大", errors={"quantity": [f"不能超过 {MAX_QUANTITY}"]})
    if kind != MovementKind.ADJUSTMENT and quantity < 0:
        raise ValidationError(
            "捐赠和采购的数量必须大于 0；减少库存请用调整", errors={"quantity": ["须大于 0"]}
        )
    if kind == MovementKind.ADJUSTMENT and not (note or "").strip():
        raise ValidationError("库存调整必须说明原因", errors={"note": ["请填写原因"]})
    after = change_stock(session, good_id=good.id, delta=quantity)
    if after is None:
        raise ConflictError(
            f"{good.name} 当前库存 {current_stock(session, good.id)}{good.unit}，不能减少 "
            f"{-quantity}{good.unit}"
        )
    return record_movement(
        session,
        good=good,
        kind=kind,
        quantity=quantity,
        stock_after=after,
        actor_id=actor_id,
        now=now,
        source=source,
        note=note,
    )


def list_movements(session: Session, *, good: Good, limit: int = 200) -> list[StockMovement]:
    """Return a good's stock movements, newest first."""
    return list(
        session.execute(
            select(StockMovement)
            .where(StockMovement.good_id == good.id)
            .order_by(StockMovement.id.desc())
            .limit(limit)
        ).scalars()
    )


def change_stock(session: Session, *, good_id: int, delta: int) -> int | None:
    """Add `delta` to a good's stock unless that would make it negative; return the new stock,
    or None when the shelf does not hold enough (nothing changed)."""
    after = session.execute(
        update(Good)
        .where(Good.id == good_id, Good.stock + delta >= 0)
        .values(stock=Good.stock + delta)
        .returning(Good.stock)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    loaded = session.identity_map.get(session.identity_key(Good, good_id))
    if loaded is not None and after is not None:
        session.expire(loaded, ["stock"])  # the row changed under the identity map
    return after


def current_stock(session: Session, good_id: int) -> int:
    """Return a good's stock as the database has it now."""
    return session.execute(select(Good.stock).where(Good.id == good_id)).scalar_one()


def record_movement(
    session: Session,
    *,
    good: Good,
    kind: str,
    quantity: int,
    stock_after: int,
    actor_id: int | None,
    now: datetime,
    source: str = "",
    note: str = "",
    redemption_id: int | None = None,
) -> StockMovement:
    """Append the movement row of a stock change already applied."""
    movement = StockMovement(
        village_id=good.village_id,
        good_id=good.id,
        kind=str(kind),
        quantity=quantity,
        stock_after=stock_after,
        source=(source or "").strip()[:100],
        note=(note or "").strip(),
        redemption_id=redemption_id,
        actor_id=actor_id,
        created_at=now,
    )
    session.add(movement)
    session.flush()
    return movement


def stock_totals(session: Session, *, village: Village) -> dict[int, int]:
    """Return each good's sum of movements (equals its stock when nothing bypassed movements)."""
    rows = session.execute(
        select(StockMovement.good_id, func.sum(StockMovement.quantity))
        .where(StockMovement.village_id == village.id)
        .group_by(StockMovement.good_id)
    ).all()
    return {good_id: int(total) for good_id, total in rows}


# --- helpers -----------------------------------------------------------------------------------

_GOOD_NUMBERS = ("price", "limit_per_period", "low_stock_at")


def _check_good_fields(**fields) -> None:
    price = fields.get("price")
    if "price" in fields and (
        not isinstance(price, int) or isinstance(price, bool) or not 1 <= price <= MAX_PRICE
    ):
        raise ValidationError(
            f"价格必须是 1 到 {MAX_PRICE} 之间的整数积分", errors={"price": ["超出范围"]}
        )
    limit = fields.get("limit_per_period")
    if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= MAX_QUANTITY):
        raise ValidationError(
            "每户每期限兑数量必须是正整数（不限则留空）", errors={"limit_per_period": ["超出范围"]}
        )
    low = fields.get("low_stock_at")
    if "low_stock_at" in fields and (not isinstance(low, int) or not 0 <= low <= MAX_QUANTITY):
        raise ValidationError("库存预警数量必须是非负整数", errors={"low_stock_at": ["超出范围"]})


def _name(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 100:
        raise ValidationError(f"请填写{what}（不超过 100 字）", errors={"name": ["不能为空"]})
    return value


def list_donations(session: Session, *, village: Village, limit: int = 100) -> list[StockMovement]:
    """Return the village's donations received, newest first (the thank-you list)."""
    return list(
        session.execute(
            select(StockMovement)
            .where(
                StockMovement.village_id == village.id,
                StockMovement.kind == MovementKind.DONATION,
            )
            .order_by(StockMovement.id.desc())
            .limit(limit)
        ).scalars()
    )
