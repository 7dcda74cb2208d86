"""Many counters at once against one household and one nearly empty shelf.

Each thread has its own Session and commits like a request; a barrier releases them together.
On SQLite the engine serialises writers (BEGIN IMMEDIATE); on PostgreSQL the conditional
UPDATEs on the nonce, the quota, the stock and the lots are what decide who wins.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from points import ledger, shop
from points.db import make_engine, make_sessionmaker
from points.errors import (
    InsufficientPointsError,
    LimitExceededError,
    OutOfStockError,
    TokenUsedError,
)
from points.ledger.verify import verify
from points.models import Account, Redemption, Scheme, StockMovement, Store, Village
from points.models.org import Role
from points.shop import credentials, redemption
from points.shop.credentials import NonceRef
from points.shop.redemption import BasketLine
from tests.factories import make_household, make_scheme, make_village
from tests.shop_factories import fund, make_actor, make_store

THREADS = 32

pytestmark = pytest.mark.slow


@pytest.fixture
def factory(db_url):
    """Sessions from one engine whose pool holds a connection for every thread at once."""
    engine = make_engine(db_url, pool_size=THREADS + 4, max_overflow=4, pool_timeout=60)
    yield make_sessionmaker(engine)
    engine.dispose()


def race(factory, work, n=THREADS):
    """Run work(session, i) in n threads released together; return (successes, errors by i)."""
    barrier = threading.Barrier(n)
    results, errors = {}, {}

    def run(i):
        with factory() as session:
            barrier.wait(timeout=60)
            try:
                results[i] = work(session, i)
                session.commit()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                session.rollback()
                errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors


def setup(factory, now, *, points, price, stock, limit=None, households=1, nonces=THREADS):
    """One village, `households` funded with `points` each, one good; a nonce per thread."""
    with factory() as s:
        village = make_village(s)
        scheme = make_scheme(s, village)
        homes = [make_household(s, village, members=1) for _ in range(households)]
        for home in homes:
            fund(s, scheme, home, points, now)
        store, goods = make_store(s, village, now, stock=stock, goods=(("大米", price, "袋"),))
        good = goods["大米"]
        if limit is not None:
            shop.update_good(s, good=good, limit_per_period=limit)
        clerk = make_actor(s, village, Role.CLERK)
        refs = [
            NonceRef(
                credentials.issue_nonce(
                    s, village=village, household=homes[i % households], now=now, seconds=60
                ).nonce,
                homes[i % households].id,
            )
            for i in range(nonces)
        ]
        s.commit()
        return village.id, scheme.id, [h.id for h in homes], store.id, good.id, clerk, refs


def buy(village_id, store_id, good_id, clerk, now, ref_for):
    def work(session, i):
        r = redemption.redeem(
            session,
            village=session.get(Village, village_id),
            store=session.get(Store, store_id),
            basket=[BasketLine(good_id, 1)],
            actor=clerk,
            now=now,
            nonce=ref_for(i),
        )
        return r.id

    return work


def check_books(factory, scheme_id, home_ids, good_id, *, points, price, stock, won):
    """Balance and stock are exactly what the winners took; nothing negative; verify passes."""
    with factory() as s:
        scheme = s.get(Scheme, scheme_id)
        spent = sum(ledger.get_balance(s, scheme=scheme, subject_id=h).available for h in home_ids)
        assert spent == points * len(home_ids) - won * price >= 0
        assert shop.current_stock(s, good_id) == stock - won >= 0
        assert (
            s.execute(select(func.min(Account.balance)).where(Account.kind == "lot")).scalar() >= 0
        )
        assert s.execute(select(func.count()).select_from(Redemption)).scalar_one() == won
        moved = s.execute(
            select(func.count())
            .select_from(StockMovement)
            .where(StockMovement.kind == "redemption")
        ).scalar_one()
        assert moved == won
        report = verify(s)
        assert report.ok, report.breaches


@pytest.mark.parametrize(
    "points,price,stock",
    [(100, 20, 8), (1000, 20, 7)],
    ids=["points-run-out-first", "stock-runs-out-first"],
)
def test_32_counters_one_household_one_low_stock_good(factory, now, points, price, stock):
    village_id, scheme_id, homes, store_id, good_id, clerk, refs = setup(
        factory, now, points=points, price=price, stock=stock
    )
    results, errors = race(
        factory, buy(village_id, store_id, good_id, clerk, now, refs.__getitem__)
    )
    affordable = min(points // price, stock)
    assert len(results) == affordable, errors
    kinds = Counter(type(e).__name__ for e in errors.values())
    assert set(kinds) <= {InsufficientPointsError.__name__, OutOfStockError.__name__}, errors
    check_books(
        factory, scheme_id, homes, good_id, points=points, price=price, stock=stock, won=affordable
    )


def test_one_code_at_32_counters_is_spent_once(factory, now):
    village_id, scheme_id, homes, store_id, good_id, clerk, refs = setup(
        factory, now, points=1000, price=5, stock=100, nonces=1
    )
    results, errors = race(
        factory, buy(village_id, store_id, good_id, clerk, now, lambda i: refs[0])
    )
    assert len(results) == 1
    assert all(isinstance(e, TokenUsedError) for e in errors.values()), errors
    check_books(factory, scheme_id, homes, good_id, points=1000, price=5, stock=100, won=1)


def test_a_per_household_limit_holds_under_a_race(factory, now):
    village_id, scheme_id, homes, store_id, good_id, clerk, refs = setup(
        factory, now, points=1000, price=5, stock=100, limit=3
    )
    results, errors = race(
        factory, buy(village_id, store_id, good_id, clerk, now, refs.__getitem__)
    )
    assert len(results) == 3
    assert all(isinstance(e, LimitExceededError) for e in errors.values()), errors
    check_books(factory, scheme_id, homes, good_id, points=1000, price=5, stock=100, won=3)


def test_many_households_share_the_last_bags(factory, now):
    village_id, scheme_id, homes, store_id, good_id, clerk, refs = setup(
        factory, now, points=50, price=50, stock=10, households=16, nonces=16
    )
    results, errors = race(
        factory, buy(village_id, store_id, good_id, clerk, now, refs.__getitem__), n=16
    )
    assert len(results) == 10
    assert all(isinstance(e, OutOfStockError) for e in errors.values()), errors
    check_books(factory, scheme_id, homes, good_id, points=50, price=50, stock=10, won=10)
