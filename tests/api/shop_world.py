"""A stocked store in the API test world, and helpers to mint codes the way a phone would."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.shop import qr
from points import shop
from points.db import utcnow
from points.models import Household, Scheme, User, Village
from points.org.access import load_actor
from points.shop import credentials, orders
from points.shop.redemption import BasketLine
from tests.shop_factories import fund, make_store


@dataclass
class Shop:
    store_id: int = 0
    store_b_id: int = 0
    goods: dict = field(default_factory=dict)  # name -> id, in village A's store


def build_shop(app, world, stock: int = 20) -> Shop:
    """Village A gets 村积分超市 with four goods (20 each); home1 and home2 get 500 points;
    village B gets a store too. Stored on `world.shop`."""
    maker = app.extensions["points.sessionmaker"]
    now = utcnow()
    result = Shop()
    with maker() as s, s.begin():
        for village_id, homes in ((world.a.id, (world.home1, world.home2)), (world.b.id, ())):
            village = s.get(Village, village_id)
            store, goods = make_store(s, village, now, stock=stock)
            scheme = shop.redeemable_scheme(s, village=village)
            for home in homes:
                fund(s, scheme, s.get(Household, home.id), 500, now)
            if village_id == world.a.id:
                result.store_id, result.goods = store.id, {n: g.id for n, g in goods.items()}
            else:
                result.store_b_id = store.id
    world.shop = result
    world.app = app
    return result


def settings(app) -> qr.TokenSettings:
    return qr.TokenSettings(secret=app.config["SECRET_KEY"])


def phone_code(app, village_id: int, household_id: int, now=None) -> str:
    """Mint a resident's phone code (PTS1:…) as the my/qr-token endpoint would, at `now`."""
    maker = app.extensions["points.sessionmaker"]
    with maker() as s, s.begin():
        nonce = credentials.issue_nonce(
            s,
            village=s.get(Village, village_id),
            household=s.get(Household, household_id),
            now=now or utcnow(),
            seconds=60,
        )
        return qr.sign(settings(app), nonce)


def pending_order(app, world, quantity: int = 1) -> int:
    """Place an order for home1 (as its resident) in village A's store; return its id."""
    maker = app.extensions["points.sessionmaker"]
    with maker() as s, s.begin():
        actor = load_actor(s, world.users["resident"].id)
        village = s.get(Village, world.a.id)
        order = orders.create_order(
            s,
            village=village,
            store=shop.get_store(s, village=village, store_id=world.shop.store_id),
            actor=actor,
            basket=[BasketLine(world.shop.goods["肥皂"], quantity)],
            now=utcnow(),
        )
        return order.id


def redeemed(app, world) -> int:
    """Redeem one soap for home2 by its card, as the clerk; return the redemption id."""
    from points.shop import redemption

    maker = app.extensions["points.sessionmaker"]
    with maker() as s, s.begin():
        village = s.get(Village, world.a.id)
        card = credentials.issue_card(
            s,
            village=village,
            household=s.get(Household, world.home2.id),
            actor_id=None,
            now=utcnow(),
        )
        r = redemption.redeem(
            s,
            village=village,
            store=shop.get_store(s, village=village, store_id=world.shop.store_id),
            basket=[BasketLine(world.shop.goods["肥皂"], 1)],
            actor=load_actor(s, world.users["clerk"].id),
            now=utcnow(),
            card_serial=card.serial,
            idem_key=f"test:{card.id}",
        )
        return r.id


def live_card(app, world, home) -> int:
    """Issue (or reissue) a card for a household; return its id."""
    maker = app.extensions["points.sessionmaker"]
    with maker() as s, s.begin():
        card = credentials.issue_card(
            s,
            village=s.get(Village, home.village_id),
            household=s.get(Household, home.id),
            actor_id=None,
            now=utcnow(),
        )
        return card.id


def set_threshold(app, village_id: int, points: int) -> None:
    maker = app.extensions["points.sessionmaker"]
    with maker() as s, s.begin():
        scheme = shop.redeemable_scheme(s, village=s.get(Village, village_id))
        s.get(Scheme, scheme.id).redemption_threshold = points


def user_name(app, user_id: int) -> str:
    with app.extensions["points.sessionmaker"]() as s:
        return s.get(User, user_id).display_name
