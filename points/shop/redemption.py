"""Redemption at the points shop: the window and threshold, server-priced previews, scanning
a household at the counter, redeem and same-day cancel.

A redemption is one unit in the caller's transaction (under a savepoint, so a refusal leaves
nothing even if the caller carries on): the nonce or order is consumed by a conditional UPDATE,
limited goods count against the household's quota by a conditional UPDATE, stock is taken by a
conditional UPDATE, the ledger spends the household's oldest lots by a conditional UPDATE, and
the redemption, its items and stock movements are written. The database, not Python, refuses a
replayed code, an empty shelf, an exceeded limit and a double spend.

Cards and nonces are in points.shop.credentials, the order life cycle in points.shop.orders, shelves
in points.shop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from points import ledger
from points.effective import change_settings, in_force, setting_on
from points.errors import (
    BelowThresholdError,
    CancelNotAllowedError,
    DuplicateRequestError,
    GoodUnavailableError,
    InsufficientPointsError,
    LimitExceededError,
    NotFoundError,
    OrderStateError,
    OutOfStockError,
    OutsideRedemptionWindowError,
    PermissionDeniedError,
    PointsError,
    ValidationError,
)
from points.models import (
    Good,
    Household,
    HouseholdCard,
    QrNonce,
    Redemption,
    RedemptionItem,
    RedemptionPolicy,
    RedemptionQuota,
    Scheme,
    ShopOrder,
    Store,
    Village,
)
from points.models.org import Role
from points.models.shop import (
    MovementKind,
    NonceKind,
    OrderState,
    RedemptionMethod,
    RedemptionState,
)
from points.org.access import Actor
from points.org.operations import mask_name
from points.periods import (
    LOCAL_TZ,
    local_date,
    next_period_start,
    period_key,
    period_label,
    period_start,
)
from points.shop import goods as shop
from points.shop.credentials import (
    CardRef,
    NonceRef,
    check_nonce,
    consume_nonce,
    get_live_card,
    issue_nonce,
)

MAX_LINES = 50
MAX_LINE_QUANTITY = 999
METHOD_NAMES = {
    RedemptionMethod.PHONE: "手机码",
    RedemptionMethod.CARD: "户卡",
    RedemptionMethod.ORDER: "扫码下单",
}


# ---------------------------------------------------------------------------------------------
# Plain values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BasketLine:
    """What a household asks for: a good and how many (1..999)."""

    good_id: int
    quantity: int


@dataclass(frozen=True)
class Refusal:
    """Why a basket cannot be redeemed now: a stable code and a Chinese sentence."""

    code: str
    message: str

    @classmethod
    def of(cls, error: PointsError) -> Refusal:
        return cls(error.code, error.message)


@dataclass(frozen=True)
class PricedLine:
    """A basket line priced by the server, with what the shelf and the quota allow."""

    good_id: int
    name: str
    unit: str
    unit_price: int
    quantity: int
    amount: int
    stock: int
    limit_left: int | None
    refusal: Refusal | None


@dataclass(frozen=True)
class Window:
    """The redemption window of the current period: local dates, both inclusive."""

    period: str
    days: int | None
    opens_on: date
    closes_on: date
    open: bool

    def describe(self) -> str:
        span = f"{self.opens_on:%Y-%m-%d} 至 {self.closes_on:%Y-%m-%d}"
        return f"本期兑换时间：{span}" + (f"（每期最后 {self.days} 天）" if self.days else "")


@dataclass(frozen=True)
class MemberView:
    name: str  # masked: 张*三
    is_head: bool


@dataclass(frozen=True)
class HouseholdView:
    """A household as the counter sees it: number, masked names, members to confirm identity."""

    id: int
    number: str
    door_plate: str | None
    head_name: str
    members: tuple[MemberView, ...]


@dataclass(frozen=True)
class Preview:
    """What confirming would do: the household, its points, the priced basket, any refusal."""

    household: HouseholdView
    store_id: int
    period: str
    available: int
    owed: int
    score: int
    threshold: int
    window: Window
    lines: tuple[PricedLine, ...]
    total: int
    refusal: Refusal | None

    @property
    def can_redeem(self) -> bool:
        return self.refusal is None and self.total > 0

    @property
    def balance_after(self) -> int:
        return self.available - self.total


@dataclass(frozen=True)
class Checkout:
    """A scanned household: its preview and the nonce that confirming will consume."""

    preview: Preview
    nonce: QrNonce
    card: HouseholdCard | None


# ---------------------------------------------------------------------------------------------
# Window and threshold
# ---------------------------------------------------------------------------------------------


def get_window(session: Session, *, scheme: Scheme, now: datetime) -> Window:
    """Return the redemption window of the period containing `now` (Beijing dates), by the
    window in force today (a change announced for a later date waits for its day)."""
    today = local_date(now)
    days = setting_on(session, target=scheme, name="window_days", on=today)
    return _window(scheme, today, days)


def _window(scheme: Scheme, today: date, days: int | None) -> Window:
    pkey = period_key(scheme.period_kind, today)
    first = period_start(scheme.period_kind, pkey)
    end = next_period_start(scheme.period_kind, pkey)  # exclusive
    opens = first if days is None else max(first, end - timedelta(days=days))
    last = end - timedelta(days=1)
    return Window(pkey, days, opens, last, opens <= today <= last)


def set_window(
    session: Session, *, scheme: Scheme, days: int | None, actor_id: int | None, now: datetime
) -> RedemptionPolicy:
    """Open redemption in the last `days` local days of each period; None: all period."""
    if days is not None and (not isinstance(days, int) or not 1 <= days <= 366):
        raise ValidationError("兑换天数必须是 1 到 366 之间的整数（全期开放则留空）")
    # Through the dated settings, from today, so the history read "as of" a day stays whole.
    today = local_date(now)
    change_settings(
        session,
        target=scheme,
        wanted={"window_days": days},
        effective_from=today,
        today=today,
        actor_id=actor_id,
        now=now,
    )
    policy = _policy(session, scheme)
    if policy is None:
        policy = RedemptionPolicy(village_id=scheme.village_id, scheme_id=scheme.id)
        session.add(policy)
    policy.updated_at, policy.updated_by = now, actor_id
    session.flush()
    return policy


def _policy(session: Session, scheme: Scheme) -> RedemptionPolicy | None:
    return session.execute(
        select(RedemptionPolicy).where(RedemptionPolicy.scheme_id == scheme.id)
    ).scalar_one_or_none()


def _gate(session: Session, scheme: Scheme, household: Household, now: datetime):
    """Return (window, score, refusal): the window is checked first, then the threshold."""
    terms = in_force(session, target=scheme, on=local_date(now))
    window = _window(scheme, local_date(now), terms["window_days"])
    threshold = terms["redemption_threshold"]
    score = ledger.period_score(
        session, scheme=scheme, subject_id=household.id, period=window.period
    )
    if not window.open:
        return window, score, Refusal(OutsideRedemptionWindowError.code, window.describe())
    if score < threshold:
        message = (
            f"本期（{period_label(window.period)}）积分 {score} 分，未达到 {threshold} 分的兑换门槛"
        )
        return window, score, Refusal(BelowThresholdError.code, message)
    return window, score, None


_GATE_ERRORS = {
    OutsideRedemptionWindowError.code: OutsideRedemptionWindowError,
    BelowThresholdError.code: BelowThresholdError,
}


# ---------------------------------------------------------------------------------------------
# Preview and scan
# ---------------------------------------------------------------------------------------------


def household_view(household: Household) -> HouseholdView:
    """Return the household with masked names, head first, for the counter to confirm."""
    views = sorted(
        (
            MemberView(mask_name(m.name), m.id == household.head_id)
            for m in household.members
            if m.active
        ),
        key=lambda m: not m.is_head,
    )
    head = next((m.name for m in views if m.is_head), "—")
    return HouseholdView(household.id, household.number, household.door_plate, head, tuple(views))


def preview(
    session: Session,
    *,
    village: Village,
    store: Store,
    household: Household,
    basket: Sequence[BasketLine],
    now: datetime,
) -> Preview:
    """Price a basket for a household at a store and say whether it could be redeemed now.

    Refusals (window, threshold, stock, limit, points) are reported, not raised: the clerk
    sees why. Nothing is written.
    """
    _same_village(village, household)
    _check_store(village, store)
    lines = normalise_basket(basket, allow_empty=True)
    scheme = session.get(Scheme, store.scheme_id)
    window, score, refusal = _gate(session, scheme, household, now)
    goods = _goods(session, store, [line.good_id for line in lines])
    used = _quota_used(session, household.id, window.period, goods.values())
    priced = []
    for line in lines:
        good = goods[line.good_id]
        left = None if good.limit_per_period is None else good.limit_per_period - used[good.id]
        problem = _line_refusal(good, line.quantity, left)
        priced.append(
            PricedLine(
                good.id,
                good.name,
                good.unit,
                good.price,
                line.quantity,
                good.price * line.quantity,
                good.stock,
                left,
                problem,
            )
        )
    total = sum(p.amount for p in priced)
    balance = ledger.get_balance(session, scheme=scheme, subject_id=household.id)
    refusal = refusal or next((p.refusal for p in priced if p.refusal), None)
    if refusal is None and total > balance.available:
        refusal = Refusal(
            InsufficientPointsError.code,
            f"积分余额不足：可用 {balance.available} 分，需要 {total} 分",
        )
    return Preview(
        household=household_view(household),
        store_id=store.id,
        period=window.period,
        available=balance.available,
        owed=balance.owed,
        score=score,
        threshold=scheme.redemption_threshold,
        window=window,
        lines=tuple(priced),
        total=total,
        refusal=refusal,
    )


def scan(
    session: Session,
    *,
    village: Village,
    store: Store,
    credential: NonceRef | CardRef,
    basket: Sequence[BasketLine],
    now: datetime,
    checkout_seconds: int,
) -> Checkout:
    """Resolve a scanned phone code or card to its household and preview the basket.

    A phone code's own nonce is what confirming will consume (nothing is written now); a
    card, which is not single-use, gets a checkout nonce for this sale, valid for
    `checkout_seconds`, so that confirming twice cannot spend twice.
    """
    _check_store(village, store)
    card = None
    if isinstance(credential, CardRef):
        card = get_live_card(session, village=village, serial=credential.serial)
        household = session.get(Household, card.household_id)
        nonce = issue_nonce(
            session,
            village=village,
            household=household,
            now=now,
            seconds=checkout_seconds,
            kind=NonceKind.CHECKOUT,
            card=card,
        )
    else:
        nonce = check_nonce(
            session,
            village=village,
            nonce=credential.nonce,
            household_id=credential.household_id,
            now=now,
        )
        household = session.get(Household, nonce.household_id)
        if nonce.card_id is not None:
            card = session.get(HouseholdCard, nonce.card_id)
    result = preview(
        session, village=village, store=store, household=household, basket=basket, now=now
    )
    return Checkout(result, nonce, card)


# ---------------------------------------------------------------------------------------------
# Redeem and cancel
# ---------------------------------------------------------------------------------------------


def redeem(
    session: Session,
    *,
    village: Village,
    store: Store,
    basket: Sequence[BasketLine],
    actor: Actor,
    now: datetime,
    nonce: NonceRef | None = None,
    card_serial: str | None = None,
    order_id: int | None = None,
    idem_key: str | None = None,
    proxy: bool = False,
    proxy_note: str = "",
) -> Redemption:
    """Hand goods to a household for points, all or nothing, in the caller's transaction.

    The household is named by exactly one of: a nonce (phone code or card checkout; consumed),
    a card serial (then `idem_key` is required: a card is not single-use), or a pending order
    (collected). Refuses outside the window, under the threshold, beyond a limit, an empty
    shelf, or too few points. A nonce or order is single-use: a second attempt is refused
    (token_used, order_not_pending); a card serial with the same key returns the first result.
    """
    actor.require(village, Role.CLERK)
    _check_store(village, store)
    lines = normalise_basket(basket)
    if sum(x is not None for x in (nonce, card_serial, order_id)) != 1:
        raise ValidationError("请提供手机兑换码、户卡或订单之一")
    if card_serial is not None:
        if not idem_key:
            raise ValidationError("凭户卡兑换需要请求编号（idem_key）")
        key = f"redeem:card:{idem_key}"
    elif nonce is not None:
        key = f"redeem:{nonce.nonce}"
    else:
        key = f"redeem:order:{order_id}"
    proxy_note = (proxy_note or "").strip()[:200]
    request_hash = _hash(store.id, lines, bool(proxy), proxy_note, card_serial)
    if card_serial is not None:
        # The caller's key makes a retry safe. A nonce or an order is different: it is spent
        # once and a second attempt is refused, even with the same basket, so that a code
        # photographed at the counter never shows a clerk a "successful" receipt again.
        existing = session.execute(
            select(Redemption).where(
                Redemption.village_id == village.id, Redemption.idem_key == key
            )
        ).scalar_one_or_none()
        if existing is not None:
            if existing.request_hash != request_hash:
                raise DuplicateRequestError(idem_key=key)
            return existing

    # A savepoint: whatever refuses below (a lost race included) undoes all of it.
    with session.begin_nested():
        card_id = None
        if nonce is not None:
            row = consume_nonce(
                session,
                village=village,
                nonce=nonce.nonce,
                household_id=nonce.household_id,
                now=now,
            )
            household_id, card_id = row.household_id, row.card_id
            method = RedemptionMethod.CARD if card_id else RedemptionMethod.PHONE
        elif card_serial is not None:
            card = get_live_card(session, village=village, serial=card_serial)
            household_id, card_id, method = card.household_id, card.id, RedemptionMethod.CARD
        else:
            household_id = _collect(session, village, store, order_id, actor, now)
            method = RedemptionMethod.ORDER
        household = session.get(Household, household_id)
        if not household.active:
            raise PermissionDeniedError("该农户已注销，不能兑换")
        redemption = _execute(
            session,
            village=village,
            store=store,
            household=household,
            lines=lines,
            actor=actor,
            now=now,
            method=method,
            key=key,
            request_hash=request_hash,
            card_id=card_id,
            order_id=order_id,
            proxy=bool(proxy),
            proxy_note=proxy_note,
        )
    return redemption


def _execute(
    session, *, village, store, household, lines, actor, now, method, key, request_hash, **fields
) -> Redemption:
    scheme = session.get(Scheme, store.scheme_id)
    window, _score, refusal = _gate(session, scheme, household, now)
    if refusal is not None:
        raise _GATE_ERRORS[refusal.code](refusal.message)
    pkey = window.period
    goods = _goods(session, store, [line.good_id for line in lines])
    for line in lines:
        good = goods[line.good_id]
        if not good.active:
            raise GoodUnavailableError(f"{good.name} 已下架，暂不可兑换")
    # Rows are locked in one order (quotas, then goods, by id; then the ledger's accounts) so
    # that concurrent redemptions queue instead of deadlocking.
    for line in lines:
        _take_quota(session, village, goods[line.good_id], household.id, pkey, line.quantity)
    stock_after = {}
    for line in lines:
        good = goods[line.good_id]
        after = shop.change_stock(session, good_id=good.id, delta=-line.quantity)
        if after is None:
            left = shop.current_stock(session, good.id)
            raise OutOfStockError(
                f"{good.name} 库存不足：剩余 {left}{good.unit}，需要 {line.quantity}{good.unit}",
                good_id=good.id,
            )
        stock_after[good.id] = after
    total = sum(goods[line.good_id].price * line.quantity for line in lines)
    memo = f"{store.name} 兑换：" + "、".join(
        f"{goods[line.good_id].name}×{line.quantity}" for line in lines
    )
    entry = ledger.spend(
        session,
        scheme=scheme,
        subject_id=household.id,
        points=total,
        idem_key=key,
        actor_id=actor.user_id,
        now=now,
        memo=memo[:500],
    )
    balance = ledger.get_balance(session, scheme=scheme, subject_id=household.id)
    redemption = Redemption(
        village_id=village.id,
        store_id=store.id,
        household_id=household.id,
        scheme_id=scheme.id,
        period_key=pkey,
        method=str(method),
        total=total,
        balance_after=balance.available,
        state=RedemptionState.COMPLETED,
        clerk_id=actor.user_id,
        entry_id=entry.id,
        idem_key=key,
        request_hash=request_hash,
        created_at=now,
        **fields,
    )
    for line in lines:
        good = goods[line.good_id]
        redemption.items.append(
            RedemptionItem(
                village_id=village.id,
                good_id=good.id,
                name=good.name,
                unit=good.unit,
                unit_price=good.price,
                quantity=line.quantity,
                amount=good.price * line.quantity,
            )
        )
    session.add(redemption)
    session.flush()
    for line in lines:
        shop.record_movement(
            session,
            good=goods[line.good_id],
            kind=MovementKind.REDEMPTION,
            quantity=-line.quantity,
            stock_after=stock_after[line.good_id],
            actor_id=actor.user_id,
            now=now,
            note=f"兑换单 {redemption.id}",
            redemption_id=redemption.id,
        )
    return redemption


def cancel_redemption(
    session: Session,
    *,
    village: Village,
    redemption_id: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> Redemption:
    """Undo a redemption made today (Beijing date): a reversing ledger entry, stock back on the
    shelf with movements, and the household's quota returned. Admins only."""
    actor.require(village, Role.ADMIN)
    redemption = get_redemption(session, village=village, redemption_id=redemption_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("请填写撤销原因", errors={"reason": ["不能为空"]})
    if redemption.state != RedemptionState.COMPLETED:
        raise CancelNotAllowedError("该兑换已经撤销")
    if local_date(redemption.created_at) != local_date(now):
        raise CancelNotAllowedError("只能撤销当天的兑换记录；更早的请走冲正流程")
    with session.begin_nested():
        changed = session.execute(
            update(Redemption)
            .where(Redemption.id == redemption.id, Redemption.state == RedemptionState.COMPLETED)
            .values(
                state=RedemptionState.CANCELLED,
                cancelled_at=now,
                cancelled_by=actor.user_id,
                cancel_reason=reason[:200],
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            raise CancelNotAllowedError("该兑换已经撤销")
        reversal = ledger.reverse(
            session,
            entry_id=redemption.entry_id,
            reason=f"撤销兑换单 {redemption.id}：{reason}",
            actor_id=actor.user_id,
            now=now,
            idem_key=f"cancel:{redemption.id}",
        )
        for item in redemption.items:
            after = shop.change_stock(session, good_id=item.good_id, delta=item.quantity)
            shop.record_movement(
                session,
                good=session.get(Good, item.good_id),
                kind=MovementKind.CANCELLATION,
                quantity=item.quantity,
                stock_after=after,
                actor_id=actor.user_id,
                now=now,
                note=f"撤销兑换单 {redemption.id}：{reason}",
                redemption_id=redemption.id,
            )
            session.execute(
                update(RedemptionQuota)
                .where(
                    RedemptionQuota.good_id == item.good_id,
                    RedemptionQuota.household_id == redemption.household_id,
                    RedemptionQuota.period_key == redemption.period_key,
                )
                .values(
                    quantity=case(
                        (
                            RedemptionQuota.quantity >= item.quantity,
                            RedemptionQuota.quantity - item.quantity,
                        ),
                        else_=0,
                    )
                )
                .execution_options(synchronize_session=False)
            )
        session.execute(
            update(Redemption)
            .where(Redemption.id == redemption.id)
            .values(reversal_entry_id=reversal.id)
            .execution_options(synchronize_session=False)
        )
    session.refresh(redemption)
    return redemption


def get_redemption(session: Session, *, village: Village, redemption_id: int) -> Redemption:
    """Return a redemption of the village; raise NotFoundError."""
    row = session.get(Redemption, redemption_id) if 0 < redemption_id <= shop.MAX_ID else None
    if row is None or row.village_id != village.id:
        raise NotFoundError("找不到该兑换记录")
    return row


def list_redemptions(
    session: Session,
    *,
    village: Village,
    store_id: int | None = None,
    household_id: int | None = None,
    on: date | None = None,
    limit: int = 200,
) -> list[Redemption]:
    """Return the village's redemptions, newest first (one store, household or local day)."""
    stmt = select(Redemption).where(Redemption.village_id == village.id)
    if store_id is not None:
        stmt = stmt.where(Redemption.store_id == store_id)
    if household_id is not None:
        stmt = stmt.where(Redemption.household_id == household_id)
    if on is not None:
        start = datetime.combine(on, datetime.min.time(), tzinfo=LOCAL_TZ)
        stmt = stmt.where(
            Redemption.created_at >= start, Redemption.created_at < start + timedelta(days=1)
        )
    return list(session.execute(stmt.order_by(Redemption.id.desc()).limit(limit)).scalars())


# ---------------------------------------------------------------------------------------------
# Orders: consumed like a nonce (the rest of the order life cycle is in points.shop.orders)
# ---------------------------------------------------------------------------------------------


def _collect(session, village, store, order_id, actor, now) -> int:
    """Mark a pending order collected (once); return its household."""
    order = session.get(ShopOrder, order_id) if 0 < order_id <= shop.MAX_ID else None
    if order is None or order.village_id != village.id:
        raise NotFoundError("找不到该订单")
    if order.store_id != store.id:
        raise ValidationError("该订单不属于这家商店")
    changed = session.execute(
        update(ShopOrder)
        .where(ShopOrder.id == order.id, ShopOrder.state == OrderState.PENDING)
        .values(state=OrderState.COLLECTED, closed_at=now, closed_by=actor.user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise OrderStateError()
    session.expire(order)
    return order.household_id


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def normalise_basket(
    basket: Sequence[BasketLine], *, allow_empty: bool = False
) -> list[BasketLine]:
    """Merge repeated goods and check quantities; lines come back ordered by good id."""
    merged: dict[int, int] = {}
    for line in basket:
        q = line.quantity
        if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= MAX_LINE_QUANTITY:
            raise ValidationError(
                f"数量必须是 1 到 {MAX_LINE_QUANTITY} 之间的整数", errors={"items": ["数量有误"]}
            )
        merged[line.good_id] = merged.get(line.good_id, 0) + q
    if len(merged) > MAX_LINES:
        raise ValidationError(f"一次最多兑换 {MAX_LINES} 种商品", errors={"items": ["太多"]})
    if not merged and not allow_empty:
        raise ValidationError("请至少选择一件商品", errors={"items": ["不能为空"]})
    if any(q > MAX_LINE_QUANTITY for q in merged.values()):
        raise ValidationError(
            f"同一商品一次最多 {MAX_LINE_QUANTITY} 件", errors={"items": ["太多"]}
        )
    return [BasketLine(g, q) for g, q in sorted(merged.items())]


def _goods(session: Session, store: Store, ids: list[int]) -> dict[int, Good]:
    if not ids:
        return {}
    if any(not 0 < i <= shop.MAX_ID for i in ids):
        raise NotFoundError("找不到该商品")
    goods = {g.id: g for g in session.execute(select(Good).where(Good.id.in_(ids))).scalars().all()}
    for i in ids:
        good = goods.get(i)
        if good is None or good.village_id != store.village_id:
            raise NotFoundError("找不到该商品", good_id=i)
        if good.store_id != store.id:
            raise GoodUnavailableError(f"{good.name} 不是本店的商品", good_id=i)
    return goods


def _line_refusal(good: Good, quantity: int, left: int | None) -> Refusal | None:
    if not good.active:
        return Refusal(GoodUnavailableError.code, f"{good.name} 已下架，暂不可兑换")
    if good.stock < quantity:
        return Refusal(
            OutOfStockError.code,
            f"{good.name} 库存不足：剩余 {good.stock}{good.unit}，需要 {quantity}{good.unit}",
        )
    if left is not None and quantity > left:
        return Refusal(LimitExceededError.code, _limit_message(good, left))
    return None


def _limit_message(good: Good, left: int) -> str:
    return (
        f"{good.name} 每户每期限兑 {good.limit_per_period}{good.unit}，"
        f"本期还可兑 {max(left, 0)}{good.unit}"
    )


def _quota_used(session, household_id: int, pkey: str, goods: Iterable[Good]) -> dict[int, int]:
    ids = [g.id for g in goods]
    used = dict.fromkeys(ids, 0)
    if ids:
        used.update(
            session.execute(
                select(RedemptionQuota.good_id, RedemptionQuota.quantity).where(
                    RedemptionQuota.household_id == household_id,
                    RedemptionQuota.period_key == pkey,
                    RedemptionQuota.good_id.in_(ids),
                )
            ).all()
        )
    return used


def _take_quota(session, village, good: Good, household_id: int, pkey: str, quantity: int):
    """Count `quantity` against a limited good's per-household quota, or raise."""
    if good.limit_per_period is None:
        return
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(RedemptionQuota)
    session.execute(
        insert.values(
            village_id=village.id,
            good_id=good.id,
            household_id=household_id,
            period_key=pkey,
            quantity=0,
        ).on_conflict_do_nothing()  # the quota's key (with village_id first on Citus)
    )
    where = (
        RedemptionQuota.village_id == village.id,
        RedemptionQuota.good_id == good.id,
        RedemptionQuota.household_id == household_id,
        RedemptionQuota.period_key == pkey,
    )
    taken = session.execute(
        update(RedemptionQuota)
        .where(*where, RedemptionQuota.quantity + quantity <= good.limit_per_period)
        .values(quantity=RedemptionQuota.quantity + quantity)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        used = session.execute(select(RedemptionQuota.quantity).where(*where)).scalar_one()
        raise LimitExceededError(_limit_message(good, good.limit_per_period - used))


def refusal_error(refusal: Refusal) -> PointsError:
    """Return the domain error a preview's refusal stands for (to raise it)."""
    classes = {
        cls.code: cls
        for cls in (
            OutsideRedemptionWindowError,
            BelowThresholdError,
            OutOfStockError,
            LimitExceededError,
            GoodUnavailableError,
            InsufficientPointsError,
        )
    }
    return classes[refusal.code](refusal.message)


def _check_store(village: Village, store: Store) -> None:
    if store.village_id != village.id:
        raise NotFoundError("找不到该商店")
    if not store.active:
        raise GoodUnavailableError(f"{store.name} 已停业，暂不能兑换")


def _same_village(village: Village, household: Household) -> None:
    if household.village_id != village.id:
        raise NotFoundError("找不到该农户")


def _hash(*parts) -> str:
    body = json.dumps(
        [[(x.good_id, x.quantity) for x in p] if isinstance(p, list) else p for p in parts],
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()
