"""The points shop's domain: shelves, cards, single-use nonces, window and threshold, limits,
redeem all-or-nothing, same-day cancel, and counter-code orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from points import ledger, shop
from points.errors import (
    BelowThresholdError,
    CancelNotAllowedError,
    CardRevokedError,
    CardUnknownError,
    ConflictError,
    DuplicateRequestError,
    GoodUnavailableError,
    InsufficientPointsError,
    LimitExceededError,
    OrderStateError,
    OutOfStockError,
    OutsideRedemptionWindowError,
    PermissionDeniedError,
    TokenExpiredError,
    TokenInvalidError,
    TokenUsedError,
    TokenWrongVillageError,
    ValidationError,
)
from points.ledger.verify import verify
from points.models import JournalEntry, QrNonce, Redemption, Scheme, StockMovement
from points.models.org import Role
from points.periods import local_date
from points.shop import credentials, orders, redemption
from points.shop.credentials import CardRef, NonceRef
from points.shop.redemption import BasketLine
from tests.factories import make_household, make_scheme, make_village
from tests.shop_factories import fund, make_actor, make_store, resident_actor


@pytest.fixture
def shopworld(session, now):
    """A village with a quarterly household scheme, a funded household and a stocked store."""
    village = make_village(session, "shop-a")
    scheme = make_scheme(session, village)
    home = make_household(session, village, members=3)
    fund(session, scheme, home, 200, now)
    store, goods = make_store(session, village, now)
    clerk = make_actor(session, village, Role.CLERK)
    admin = make_actor(session, village, Role.ADMIN)
    session.commit()
    return type(
        "ShopWorld",
        (),
        dict(
            village=village,
            scheme=scheme,
            home=home,
            store=store,
            goods=goods,
            clerk=clerk,
            admin=admin,
        ),
    )


def _nonce(session, w, now, seconds=60, home=None):
    row = credentials.issue_nonce(
        session, village=w.village, household=home or w.home, now=now, seconds=seconds
    )
    return NonceRef(row.nonce, row.household_id)


def _redeem(session, w, now, basket, **kw):
    kw.setdefault("nonce", _nonce(session, w, now))
    return redemption.redeem(
        session, village=w.village, store=w.store, basket=basket, actor=w.clerk, now=now, **kw
    )


def _available(session, w, home=None):
    return ledger.get_balance(session, scheme=w.scheme, subject_id=(home or w.home).id).available


def _stock(session, good):
    return shop.current_stock(session, good.id)


# --- the happy path ----------------------------------------------------------------------------


def test_a_phone_code_redeems_oldest_points_first_and_writes_everything(session, shopworld, now):
    w = shopworld
    older = now - timedelta(days=120)  # an earlier quarter's lot
    fund(session, w.scheme, w.home, 10, older)
    soap, rice = w.goods["肥皂"], w.goods["大米"]
    r = _redeem(session, w, now, [BasketLine(soap.id, 2), BasketLine(rice.id, 1)])
    session.commit()

    assert r.total == 60 and r.method == "phone" and r.state == "completed"
    assert [(i.name, i.quantity, i.amount) for i in r.items] == [("肥皂", 2, 10), ("大米", 1, 50)]
    assert r.balance_after == 210 - 60 == _available(session, w)
    balance = ledger.get_balance(session, scheme=w.scheme, subject_id=w.home.id)
    assert dict(balance.lots) == {"2026-Q3": 0, "2026-Q4": 150}  # the older lot went first
    assert (_stock(session, soap), _stock(session, rice)) == (18, 19)
    entry = session.get(JournalEntry, r.entry_id)
    assert entry.kind == "redemption" and entry.idem_key.startswith("redeem:")
    assert "肥皂×2" in entry.memo and entry.score_delta == 0
    moves = session.execute(
        select(StockMovement.kind, StockMovement.quantity, StockMovement.stock_after).where(
            StockMovement.redemption_id == r.id
        )
    ).all()
    assert sorted(moves) == [("redemption", -2, 18), ("redemption", -1, 19)]
    assert verify(session).ok


def test_preview_prices_on_the_server_masks_names_and_writes_nothing(session, shopworld, now):
    w = shopworld
    soap = w.goods["肥皂"]
    p = redemption.preview(
        session,
        village=w.village,
        store=w.store,
        household=w.home,
        basket=[BasketLine(soap.id, 3)],
        now=now,
    )
    assert p.total == 15 and p.can_redeem and p.available == 200 and p.balance_after == 185
    assert p.household.number == w.home.number
    assert p.household.members[0].is_head and len(p.household.members) == 3
    assert all("*" in m.name for m in p.household.members)
    assert p.lines[0].unit_price == 5 and p.lines[0].stock == 20
    assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == 0


def test_a_nonce_is_single_use_even_for_the_same_basket(session, shopworld, now):
    w = shopworld
    ref = _nonce(session, w, now)
    basket = [BasketLine(w.goods["肥皂"].id, 1)]
    _redeem(session, w, now, basket, nonce=ref)
    for again in (basket, [BasketLine(w.goods["肥皂"].id, 2)]):
        with pytest.raises(TokenUsedError):
            _redeem(session, w, now + timedelta(seconds=5), again, nonce=ref)
    assert _available(session, w) == 195


# --- tokens: replayed, expired, forged, other village -----------------------------------------


def test_a_consumed_nonce_is_refused_on_replay(session, shopworld, now):
    w = shopworld
    ref = _nonce(session, w, now)
    _redeem(session, w, now, [BasketLine(w.goods["肥皂"].id, 1)], nonce=ref)
    session.commit()
    with pytest.raises(TokenUsedError) as err:
        credentials.check_nonce(
            session, village=w.village, nonce=ref.nonce, household_id=ref.household_id, now=now
        )
    assert err.value.code == "token_used" and "已使用" in err.value.message


def test_a_nonce_expires_exactly_at_its_seconds(session, shopworld, now):
    w = shopworld
    ref = _nonce(session, w, now, seconds=60)
    just_before = now + timedelta(seconds=60) - timedelta(microseconds=1)
    credentials.check_nonce(
        session, village=w.village, nonce=ref.nonce, household_id=ref.household_id, now=just_before
    )
    with pytest.raises(TokenExpiredError):
        _redeem(
            session, w, now + timedelta(seconds=60), [BasketLine(w.goods["肥皂"].id, 1)], nonce=ref
        )
    # The refusal consumed nothing: a moment earlier the same code still works.
    r = _redeem(session, w, just_before, [BasketLine(w.goods["肥皂"].id, 1)], nonce=ref)
    assert r.total == 5


def test_forged_and_mismatched_nonces_are_invalid(session, shopworld, now):
    w = shopworld
    ref = _nonce(session, w, now)
    basket = [BasketLine(w.goods["肥皂"].id, 1)]
    with pytest.raises(TokenInvalidError):
        _redeem(session, w, now, basket, nonce=NonceRef("0" * 32, w.home.id))
    other = make_household(session, w.village)
    with pytest.raises(TokenInvalidError):
        _redeem(session, w, now, basket, nonce=NonceRef(ref.nonce, other.id))


def test_another_villages_nonce_is_refused(session, shopworld, now):
    w = shopworld
    village_b = make_village(session, "shop-b")
    make_scheme(session, village_b)
    home_b = make_household(session, village_b)
    row = credentials.issue_nonce(session, village=village_b, household=home_b, now=now, seconds=60)
    with pytest.raises(TokenWrongVillageError) as err:
        _redeem(
            session,
            w,
            now,
            [BasketLine(w.goods["肥皂"].id, 1)],
            nonce=NonceRef(row.nonce, home_b.id),
        )
    assert "其他村" in err.value.message


def test_purge_deletes_only_long_expired_nonces(session, shopworld, now):
    w = shopworld
    _nonce(session, w, now - timedelta(days=3))
    _nonce(session, w, now)
    assert credentials.purge_nonces(session, now=now) == 1
    assert session.execute(select(func.count()).select_from(QrNonce)).scalar_one() == 1


# --- cards -------------------------------------------------------------------------------------


def test_a_card_checkout_is_single_use_and_marks_the_method(session, shopworld, now):
    w = shopworld
    card = credentials.issue_card(
        session, village=w.village, household=w.home, actor_id=None, now=now
    )
    typed = credentials.format_serial(card.serial).lower()  # typed by hand, dashes and all
    checkout = redemption.scan(
        session,
        village=w.village,
        store=w.store,
        credential=CardRef(typed),
        basket=[BasketLine(w.goods["洗衣粉"].id, 1)],
        now=now,
        checkout_seconds=300,
    )
    assert checkout.card.id == card.id and checkout.preview.total == 20
    assert checkout.nonce.kind == "checkout"
    ref = NonceRef(checkout.nonce.nonce, w.home.id)
    r = _redeem(
        session, w, now + timedelta(seconds=200), [BasketLine(w.goods["洗衣粉"].id, 1)], nonce=ref
    )
    assert r.method == "card" and r.card_id == card.id
    with pytest.raises(TokenUsedError):
        _redeem(
            session,
            w,
            now,
            [BasketLine(w.goods["肥皂"].id, 1)],
            nonce=NonceRef(ref.nonce, w.home.id),
        )


def test_reissuing_a_card_revokes_the_old_serial(session, shopworld, now):
    w = shopworld
    old = credentials.issue_card(
        session, village=w.village, household=w.home, actor_id=None, now=now
    )
    new = credentials.issue_card(
        session, village=w.village, household=w.home, actor_id=None, now=now
    )
    assert old.revoked_at is not None and new.revoked_at is None and old.serial != new.serial
    with pytest.raises(CardRevokedError) as err:
        credentials.get_live_card(session, village=w.village, serial=old.serial)
    assert err.value.code == "card_revoked"
    assert credentials.get_live_card(session, village=w.village, serial=new.serial).id == new.id
    with pytest.raises(CardUnknownError):
        credentials.get_live_card(session, village=w.village, serial="0000-0000-0000-0000")


def test_a_card_revoked_after_the_scan_is_refused_at_confirm(session, shopworld, now):
    w = shopworld
    card = credentials.issue_card(
        session, village=w.village, household=w.home, actor_id=None, now=now
    )
    checkout = redemption.scan(
        session,
        village=w.village,
        store=w.store,
        credential=CardRef(card.serial),
        basket=[],
        now=now,
        checkout_seconds=300,
    )
    credentials.revoke_card(
        session, village=w.village, card_id=card.id, actor_id=None, reason="遗失", now=now
    )
    with pytest.raises(CardRevokedError):
        _redeem(
            session,
            w,
            now,
            [BasketLine(w.goods["肥皂"].id, 1)],
            nonce=NonceRef(checkout.nonce.nonce, w.home.id),
        )
    assert _available(session, w) == 200


def test_a_card_serial_alone_needs_an_idempotency_key(session, shopworld, now):
    w = shopworld
    card = credentials.issue_card(
        session, village=w.village, household=w.home, actor_id=None, now=now
    )
    basket = [BasketLine(w.goods["肥皂"].id, 1)]
    with pytest.raises(ValidationError):
        _redeem(session, w, now, basket, nonce=None, card_serial=card.serial)
    first = _redeem(session, w, now, basket, nonce=None, card_serial=card.serial, idem_key="k1")
    again = _redeem(session, w, now, basket, nonce=None, card_serial=card.serial, idem_key="k1")
    assert first.id == again.id and _available(session, w) == 195
    with pytest.raises(DuplicateRequestError):
        _redeem(session, w, now, basket * 2, nonce=None, card_serial=card.serial, idem_key="k1")


def test_ensure_cards_issues_missing_cards_once(session, shopworld, now):
    w = shopworld
    make_household(session, w.village)
    cards, issued = credentials.ensure_cards(session, village=w.village, actor_id=None, now=now)
    assert issued == len(cards) == 2
    again, issued = credentials.ensure_cards(session, village=w.village, actor_id=None, now=now)
    assert issued == 0 and [c.id for c in again] == [c.id for c in cards]
    fresh, issued = credentials.ensure_cards(
        session, village=w.village, actor_id=None, now=now, household_ids=[w.home.id], reissue=True
    )
    assert issued == 1 and fresh[0].serial != cards[0].serial


# --- window, threshold, limit, stock, points ---------------------------------------------------


def test_the_window_is_the_last_days_of_the_period_in_beijing_dates(session, shopworld, now):
    w = shopworld
    redemption.set_window(session, scheme=w.scheme, days=14, actor_id=None, now=now)
    window = redemption.get_window(session, scheme=w.scheme, now=now)
    assert (window.opens_on.isoformat(), window.closes_on.isoformat()) == (
        "2026-12-18",
        "2026-12-31",
    )
    basket = [BasketLine(w.goods["肥皂"].id, 1)]
    with pytest.raises(OutsideRedemptionWindowError) as err:
        _redeem(session, w, now, basket)
    assert "2026-12-18 至 2026-12-31" in err.value.message
    opening = datetime(2026, 12, 17, 16, 0, tzinfo=UTC)  # 2026-12-18 00:00 in Beijing
    with pytest.raises(OutsideRedemptionWindowError):
        _redeem(session, w, opening - timedelta(seconds=1), basket)
    assert _redeem(session, w, opening, basket).total == 5


def test_under_the_threshold_the_refusal_says_the_score(session, shopworld, now):
    w = shopworld
    w.scheme.redemption_threshold = 250
    session.flush()
    basket = [BasketLine(w.goods["肥皂"].id, 1)]
    p = redemption.preview(
        session, village=w.village, store=w.store, household=w.home, basket=basket, now=now
    )
    assert not p.can_redeem and p.refusal.code == "below_threshold"
    with pytest.raises(BelowThresholdError) as err:
        _redeem(session, w, now, basket)
    assert "200 分" in err.value.message and "250 分" in err.value.message


def test_a_per_household_limit_holds_per_period_and_cancel_gives_it_back(session, shopworld, now):
    w = shopworld
    oil = w.goods["食用油"]
    shop.update_good(session, good=oil, limit_per_period=1)
    fund(session, w.scheme, w.home, 200, now)
    first = _redeem(session, w, now, [BasketLine(oil.id, 1)])
    with pytest.raises(LimitExceededError) as err:
        _redeem(session, w, now, [BasketLine(oil.id, 1)])
    assert "每户每期限兑 1桶" in err.value.message
    redemption.cancel_redemption(
        session, village=w.village, redemption_id=first.id, actor=w.admin, reason="拿错", now=now
    )
    _redeem(session, w, now, [BasketLine(oil.id, 1)])
    next_quarter = datetime(2027, 1, 5, 4, 0, tzinfo=UTC)
    assert _redeem(session, w, next_quarter, [BasketLine(oil.id, 1)]).period_key == "2027-Q1"


def test_an_empty_shelf_refuses_and_leaves_the_code_usable(session, shopworld, now):
    w = shopworld
    rice = w.goods["大米"]
    ref = _nonce(session, w, now)
    with pytest.raises(OutOfStockError) as err:
        _redeem(
            session, w, now, [BasketLine(w.goods["肥皂"].id, 1), BasketLine(rice.id, 21)], nonce=ref
        )
    assert "剩余 20袋" in err.value.message
    assert _stock(session, w.goods["肥皂"]) == 20 and _available(session, w) == 200
    assert _redeem(session, w, now, [BasketLine(rice.id, 2)], nonce=ref).total == 100


def test_too_few_points_refuses_and_changes_nothing(session, shopworld, now):
    w = shopworld
    oil = w.goods["食用油"]
    with pytest.raises(InsufficientPointsError):
        _redeem(session, w, now, [BasketLine(oil.id, 3)])
    session.commit()
    assert _stock(session, oil) == 20 and _available(session, w) == 200
    assert session.execute(select(func.count()).select_from(Redemption)).scalar_one() == 0
    assert (
        session.execute(
            select(func.count()).select_from(QrNonce).where(QrNonce.consumed_at.is_not(None))
        ).scalar_one()
        == 0
    )


def test_inactive_goods_and_stores_cannot_be_redeemed(session, shopworld, now):
    w = shopworld
    soap = w.goods["肥皂"]
    shop.update_good(session, good=soap, active=False)
    with pytest.raises(GoodUnavailableError):
        _redeem(session, w, now, [BasketLine(soap.id, 1)])
    shop.update_good(session, good=soap, active=True)
    shop.update_store(session, store=w.store, active=False)
    with pytest.raises(GoodUnavailableError) as err:
        _redeem(session, w, now, [BasketLine(soap.id, 1)])
    assert "停业" in err.value.message


def test_only_clerks_redeem(session, shopworld, now):
    w = shopworld
    with pytest.raises(PermissionDeniedError):
        redemption.redeem(
            session,
            village=w.village,
            store=w.store,
            basket=[BasketLine(w.goods["肥皂"].id, 1)],
            actor=w.admin,
            now=now,
            nonce=_nonce(session, w, now),
        )


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_the_same_day_reverses_points_and_returns_stock(session, shopworld, now):
    w = shopworld
    rice = w.goods["大米"]
    r = _redeem(session, w, now, [BasketLine(rice.id, 2)], proxy=True, proxy_note="邻居代领")
    assert r.proxy and r.proxy_note == "邻居代领"
    later = now + timedelta(hours=8)  # 21:00 in Beijing, still the same day
    cancelled = redemption.cancel_redemption(
        session, village=w.village, redemption_id=r.id, actor=w.admin, reason="村民退回", now=later
    )
    session.commit()
    assert cancelled.state == "cancelled" and cancelled.cancel_reason == "村民退回"
    reversal = session.get(JournalEntry, cancelled.reversal_entry_id)
    assert reversal.kind == "reversal" and reversal.reverses_id == r.entry_id
    assert _available(session, w) == 200 and _stock(session, rice) == 20
    kinds = session.execute(
        select(StockMovement.kind, StockMovement.quantity).where(
            StockMovement.redemption_id == r.id
        )
    ).all()
    assert sorted(kinds) == [("cancellation", 2), ("redemption", -2)]
    with pytest.raises(CancelNotAllowedError):
        redemption.cancel_redemption(
            session, village=w.village, redemption_id=r.id, actor=w.admin, reason="再撤", now=later
        )
    assert verify(session).ok


def test_cancel_is_refused_the_next_day_and_for_clerks(session, shopworld, now):
    w = shopworld
    r = _redeem(session, w, now, [BasketLine(w.goods["肥皂"].id, 1)])
    with pytest.raises(PermissionDeniedError):
        redemption.cancel_redemption(
            session, village=w.village, redemption_id=r.id, actor=w.clerk, reason="x", now=now
        )
    tomorrow = now + timedelta(hours=19)  # 00:00 the next day in Beijing
    with pytest.raises(CancelNotAllowedError) as err:
        redemption.cancel_redemption(
            session, village=w.village, redemption_id=r.id, actor=w.admin, reason="x", now=tomorrow
        )
    assert "当天" in err.value.message


# --- orders ------------------------------------------------------------------------------------


def test_an_order_is_spent_when_collected_once(session, shopworld, now):
    w = shopworld
    resident = resident_actor(session, w.home)
    soap = w.goods["肥皂"]
    order = orders.create_order(
        session,
        village=w.village,
        store=w.store,
        actor=resident,
        basket=[BasketLine(soap.id, 4)],
        now=now,
    )
    assert order.state == "pending" and _available(session, w) == 200  # nothing reserved
    pending = orders.list_orders(session, village=w.village, actor=w.clerk, state="pending")
    assert [o.id for o in pending] == [order.id]
    r = orders.collect_order(session, village=w.village, order_id=order.id, actor=w.clerk, now=now)
    assert r.method == "order" and r.order_id == order.id and r.total == 20
    assert _available(session, w) == 180
    session.refresh(order)
    assert order.state == "collected" and order.closed_by == w.clerk.user_id
    with pytest.raises(OrderStateError):  # a second hand-over is refused, not replayed
        orders.collect_order(session, village=w.village, order_id=order.id, actor=w.clerk, now=now)
    assert _available(session, w) == 180


def test_an_order_is_refused_early_and_cancelled_only_by_its_household(session, shopworld, now):
    w = shopworld
    resident = resident_actor(session, w.home)
    with pytest.raises(InsufficientPointsError):
        orders.create_order(
            session,
            village=w.village,
            store=w.store,
            actor=resident,
            basket=[BasketLine(w.goods["食用油"].id, 3)],
            now=now,
        )
    order = orders.create_order(
        session,
        village=w.village,
        store=w.store,
        actor=resident,
        basket=[BasketLine(w.goods["肥皂"].id, 1)],
        now=now,
    )
    neighbour = resident_actor(session, make_household(session, w.village))
    with pytest.raises(PermissionDeniedError):
        orders.cancel_order(session, village=w.village, order_id=order.id, actor=neighbour, now=now)
    assert orders.list_orders(session, village=w.village, actor=neighbour) == []
    done = orders.cancel_order(
        session, village=w.village, order_id=order.id, actor=resident, now=now
    )
    assert done.state == "cancelled"
    with pytest.raises(ConflictError):
        orders.collect_order(session, village=w.village, order_id=order.id, actor=w.clerk, now=now)


# --- shelves -----------------------------------------------------------------------------------


def test_stock_movements_keep_the_shelf_honest(session, shopworld, now):
    w = shopworld
    soap = w.goods["肥皂"]
    move = shop.move_stock(
        session, good=soap, kind="adjustment", quantity=-17, actor_id=None, now=now, note="盘点损耗"
    )
    assert move.stock_after == 3
    with pytest.raises(ConflictError):
        shop.move_stock(
            session, good=soap, kind="adjustment", quantity=-4, actor_id=None, now=now, note="x"
        )
    with pytest.raises(ValidationError):
        shop.move_stock(session, good=soap, kind="donation", quantity=-1, actor_id=None, now=now)
    with pytest.raises(ValidationError):
        shop.move_stock(session, good=soap, kind="adjustment", quantity=1, actor_id=None, now=now)
    assert [g.name for g in shop.low_stock(session, village=w.village)] == ["肥皂"]
    assert shop.stock_totals(session, village=w.village)[soap.id] == 3 == _stock(session, soap)
    with pytest.raises(ValidationError):
        shop.update_good(session, good=soap, stock=100)


def test_the_demo_village_opens_its_shop_with_the_window_open_today(session, now):
    from points.demo import create_demo_village

    result = create_demo_village(session, now=now, households=6, months=2)
    (store,) = shop.list_stores(session, village=result.village)
    goods = shop.list_goods(session, store=store)
    assert store.name == "村积分超市" and len(goods) == 8
    assert {g.name: g.price for g in goods}["食用油（5升）"] == 85
    assert [g.name for g in shop.low_stock(session, village=result.village)] == ["食用油（5升）"]
    scheme = session.get(Scheme, store.scheme_id)
    window = redemption.get_window(session, scheme=scheme, now=now)
    assert window.open and window.opens_on == local_date(now)
    assert verify(session).ok


def test_reconcile_purges_old_qr_codes_once_a_day(session, now):
    from datetime import timedelta

    from sqlalchemy import func, select

    from points import cycles
    from points.models import QrNonce
    from points.shop import credentials
    from tests.factories import make_household, make_village

    village = make_village(session)
    home = make_household(session, village)
    credentials.issue_nonce(session, village=village, household=home, now=now, seconds=60)
    fresh_now = now + timedelta(hours=2)
    credentials.issue_nonce(session, village=village, household=home, now=fresh_now, seconds=60)
    later = now + timedelta(days=1, hours=1)
    report = cycles.reconcile(session, now=later)
    assert session.scalar(select(func.count()).select_from(QrNonce)) == 1  # the newer one stays
    again = cycles.reconcile(session, now=later)
    assert report is not None and again is not None
    assert session.scalar(select(func.count()).select_from(QrNonce)) == 1
