"""Concurrent retries of one redemption with one Idempotency-Key (a counter's flaky network
sending the same confirm several times at once): one sale, every retry gets its receipt."""

from __future__ import annotations

import threading

import pytest

from tests.api.conftest import auth
from tests.api.shop_world import build_shop, phone_code

RETRIES = 4


@pytest.fixture
def shopworld(app, world):
    build_shop(app, world)
    return world


def test_concurrent_retries_with_one_key_all_get_the_one_receipt(app, shopworld):
    w = shopworld
    url = f"/api/v1/villages/{w.a.code}/stores/{w.shop.store_id}/redemptions"
    balance_url = f"/api/v1/villages/{w.a.code}/households/{w.home1.id}/balance"
    admin = auth(w.tokens["admin"])
    start = app.test_client().get(balance_url, headers=admin).json["available"]
    body = {
        "checkout": phone_code(app, w.a.id, w.home1.id),
        "items": [{"good_id": w.shop.goods["肥皂"], "quantity": 1}],
    }
    headers = auth(w.tokens["clerk"], **{"Idempotency-Key": "counter-2-sale-41"})
    barrier = threading.Barrier(RETRIES, timeout=30)
    answers: list = [None] * RETRIES

    def confirm(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(url, json=body, headers=headers)
        answers[i] = (response.status_code, response.get_json(), response.headers)

    threads = [threading.Thread(target=confirm, args=(i,)) for i in range(RETRIES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not any(t.is_alive() for t in threads)

    statuses = [a[0] for a in answers]
    assert statuses == [201] * RETRIES, [a[1] for a in answers]
    receipts = {a[1]["id"] for a in answers}
    assert len(receipts) == 1
    assert sum(a[2].get("Idempotent-Replay") == "true" for a in answers) == RETRIES - 1
    spent = answers[0][1]["total"]
    after = app.test_client().get(balance_url, headers=admin).json["available"]
    assert after == start - spent
