"""The counter over HTTP: a clerk serves a line of residents with phones, printed cards and
orders from the counter code; bad codes are refused with stable codes; admins cancel."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import zxingcpp
from itsdangerous import URLSafeTimedSerializer
from PIL import Image

from api.shop import qr
from points.db import utcnow
from points.errors import TokenExpiredError
from tests.api.conftest import auth
from tests.api.shop_world import (
    build_shop,
    live_card,
    pending_order,
    phone_code,
    set_threshold,
    settings,
)


@pytest.fixture
def shopworld(app, world):
    build_shop(app, world)
    return world


def _url(w, path, village=None):
    return f"/api/v1/villages/{(village or w.a).code}{path}"


def _as(w, role, **headers):
    return auth(w.tokens[role], **headers)


def _scan(client, w, code, items=(), role="clerk"):
    return client.post(
        _url(w, f"/stores/{w.shop.store_id}/scan"),
        json={"code": code, "items": list(items)},
        headers=_as(w, role),
    )


def _redeem(client, w, checkout, items, **extra):
    headers = extra.pop("headers", None) or _as(w, "clerk")
    return client.post(
        _url(w, f"/stores/{w.shop.store_id}/redemptions"),
        json={"checkout": checkout, "items": list(items), **extra},
        headers=headers,
    )


def _balance(client, w, home):
    r = client.get(_url(w, f"/households/{home.id}/balance"), headers=_as(w, "admin"))
    return r.json["available"]


def _goods(client, w):
    r = client.get(_url(w, f"/stores/{w.shop.store_id}/goods"), headers=_as(w, "clerk"))
    return {g["name"]: g for g in r.json}


def _decode(png_bytes: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png_bytes)))]


# --- the line at the counter -------------------------------------------------------------------


def test_a_clerk_serves_a_line_with_a_phone_a_card_and_an_order(client, shopworld):
    w = shopworld
    soap, rice = w.shop.goods["肥皂"], w.shop.goods["大米"]
    start1, start2 = _balance(client, w, w.home1), _balance(client, w, w.home2)

    # 1. A resident shows the phone code; the clerk scans, previews, confirms.
    mine = client.get(_url(w, "/my/qr-token"), headers=_as(w, "resident")).json
    assert mine["payload"] == qr.PHONE_PREFIX + mine["token"] and mine["expires_in"] == 60
    basket = [{"good_id": soap, "quantity": 2}, {"good_id": rice, "quantity": 1}]
    preview = _scan(client, w, mine["payload"], basket)
    assert preview.status_code == 200, preview.json
    p = preview.json
    assert p["method"] == "phone" and p["can_redeem"] and p["total"] == 60
    assert p["household"]["number"] == w.home1.number and "*" in p["household"]["head_name"]
    assert len(p["household"]["members"]) == 3 and p["available"] == start1
    assert [line["amount"] for line in p["lines"]] == [10, 50]
    receipt = _redeem(client, w, p["checkout"], basket)
    assert receipt.status_code == 201, receipt.json
    r = receipt.json
    assert (r["total"], r["balance_after"], r["method"]) == (60, start1 - 60, "phone")
    assert r["store_name"] == "村积分超市" and r["household_number"] == w.home1.number
    assert [(i["name"], i["quantity"]) for i in r["items"]] == [("肥皂", 2), ("大米", 1)]
    assert r["entry_seq"] > 0 and len(r["entry_hash"]) == 64 and r["clerk_name"] == "clerk"
    assert _balance(client, w, w.home1) == start1 - 60

    # 2. An elderly resident without a phone brings the printed card; a neighbour collects.
    cards = client.post(
        _url(w, "/cards"), json={"household_ids": [w.home2.id]}, headers=_as(w, "admin")
    )
    assert cards.status_code == 201 and cards.json["issued"] == 1
    serial = cards.json["cards"][0]["serial"]
    preview = _scan(client, w, qr.card_payload(serial.replace("-", "")))
    assert preview.json["method"] == "card" and preview.json["checkout"].startswith("PTSCHK:")
    assert preview.json["checkout_expires_in"] == 300
    receipt = _redeem(
        client,
        w,
        preview.json["checkout"],
        [{"good_id": soap, "quantity": 1}],
        proxy=True,
        proxy_note="邻居代领",
    )
    assert receipt.status_code == 201, receipt.json
    assert receipt.json["method"] == "card" and receipt.json["proxy"] is True
    assert _balance(client, w, w.home2) == start2 - 5

    # 3. Another orders on the phone from the counter code; the clerk hands it over.
    order = client.post(
        _url(w, f"/stores/{w.shop.store_id}/orders"),
        json={"items": [{"good_id": soap, "quantity": 3}]},
        headers=_as(w, "resident"),
    )
    assert order.status_code == 201 and order.json["state"] == "pending"
    assert order.json["total"] == 15 and _balance(client, w, w.home1) == start1 - 60
    pending = client.get(_url(w, "/orders?state=pending"), headers=_as(w, "clerk")).json
    assert [o["id"] for o in pending] == [order.json["id"]]
    assert "*" in pending[0]["household"]["head_name"]
    collected = client.post(
        _url(w, f"/orders/{order.json['id']}/collect"), json={}, headers=_as(w, "clerk")
    )
    assert collected.status_code == 201 and collected.json["method"] == "order"
    assert _balance(client, w, w.home1) == start1 - 75
    again = client.post(
        _url(w, f"/orders/{order.json['id']}/collect"), json={}, headers=_as(w, "clerk")
    )
    assert again.status_code == 409 and again.json["error"] == "order_not_pending"

    assert _goods(client, w)["肥皂"]["stock"] == 20 - 2 - 1 - 3
    mine = client.get(_url(w, f"/households/{w.home1.id}/redemptions"), headers=_as(w, "resident"))
    assert [x["method"] for x in mine.json] == ["order", "phone"]

    events = client.get(_url(w, "/audit?action=redemption.create"), headers=_as(w, "admin")).json
    assert len(events) == 3
    proxy = [e for e in events if "代办" in e["summary"]]
    assert len(proxy) == 1 and w.home2.number in proxy[0]["summary"]


def test_a_retried_confirm_with_its_idempotency_key_replays_the_receipt(client, shopworld, app):
    w = shopworld
    code = phone_code(app, w.a.id, w.home1.id)
    items = [{"good_id": w.shop.goods["肥皂"], "quantity": 1}]
    headers = _as(w, "clerk", **{"Idempotency-Key": "counter-1-sale-7"})
    first = _redeem(client, w, code, items, headers=headers)
    again = _redeem(client, w, code, items, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replay"] == "true"
    bare = _redeem(client, w, code, items)  # no key: the code was spent, refuse
    assert bare.status_code == 409 and bare.json["error"] == "token_used"


# --- refused codes -----------------------------------------------------------------------------


def test_replayed_expired_forged_and_other_village_codes_are_refused(client, shopworld, app):
    w = shopworld
    items = [{"good_id": w.shop.goods["肥皂"], "quantity": 1}]
    start = _balance(client, w, w.home1)

    code = phone_code(app, w.a.id, w.home1.id)
    assert _redeem(client, w, code, items).status_code == 201
    for attempt in (_scan(client, w, code), _redeem(client, w, code, items)):
        assert attempt.status_code == 409 and attempt.json["error"] == "token_used"
        assert "已使用" in attempt.json["message"]

    stale = phone_code(app, w.a.id, w.home1.id, now=utcnow() - timedelta(seconds=61))
    expired = _redeem(client, w, stale, items)
    assert expired.status_code == 422 and expired.json["error"] == "token_expired"
    assert "过期" in expired.json["message"]

    fresh = phone_code(app, w.a.id, w.home1.id)
    forged = fresh[:-3] + ("AAA" if not fresh.endswith("AAA") else "BBB")
    for text in (forged, "PTS1:not-a-token", "hello", qr.PHONE_PREFIX + fresh[-20:]):
        r = _scan(client, w, text)
        assert r.status_code == 422 and r.json["error"] == "token_invalid", text
    other_key = qr.TokenSettings(secret="another-server")
    from points.models import QrNonce

    alien = qr.sign(
        other_key,
        QrNonce(nonce="0" * 32, household_id=w.home1.id, village_id=w.a.id, issued_at=utcnow()),
    )
    assert _scan(client, w, alien).json["error"] == "token_invalid"

    elsewhere = phone_code(app, w.b.id, w.home_b.id)
    r = _redeem(client, w, elsewhere, items)
    assert r.status_code == 422 and r.json["error"] == "token_wrong_village"

    counter = qr.counter_url("http://localhost/", w.a.code, w.shop.store_id)
    assert "柜台码" in _scan(client, w, counter).json["message"]
    assert _balance(client, w, w.home1) == start - 5


def test_a_revoked_card_is_refused(client, shopworld, app):
    w = shopworld
    cards = client.post(
        _url(w, "/cards"), json={"household_ids": [w.home2.id]}, headers=_as(w, "admin")
    ).json["cards"]
    old = cards[0]
    reissued = client.post(
        _url(w, "/cards"),
        json={"household_ids": [w.home2.id], "reissue": True},
        headers=_as(w, "admin"),
    ).json["cards"][0]
    assert reissued["serial"] != old["serial"]
    r = _scan(client, w, qr.card_payload(old["serial"]))
    assert r.status_code == 409 and r.json["error"] == "card_revoked"
    assert _scan(client, w, reissued["serial"]).status_code == 200  # typed by hand

    lost = client.post(
        _url(w, f"/cards/{reissued['id']}/revoke"), json={"reason": "遗失"}, headers=_as(w, "admin")
    )
    assert lost.status_code == 200 and lost.json["revoked_at"]
    assert _scan(client, w, reissued["serial"]).json["error"] == "card_revoked"
    assert _scan(client, w, "PTSCARD:ZZZZZZZZZZZZZZZZ").json["error"] == "card_unknown"
    listed = client.get(_url(w, "/cards?all=true"), headers=_as(w, "admin")).json
    assert {c["serial"] for c in listed} == {old["serial"], reissued["serial"]}


def test_token_expiry_is_exact_to_the_second_and_carries_only_the_nonce(app):
    s = settings(app)
    from points.models import QrNonce

    issued = utcnow().replace(microsecond=0)
    nonce = QrNonce(nonce="ab" * 16, household_id=7, village_id=3, issued_at=issued)
    text = qr.sign(s, nonce)
    village = type("V", (), {"id": 3})()
    # The signature's own clock: 60 s old is still accepted, 61 s is not (the nonce row's
    # expires_at, checked in the redemption, refuses from exactly 60 s on).
    ref = qr.read_token(s, text, village=village, now=issued + timedelta(seconds=60))
    assert ref.nonce == "ab" * 16 and ref.household_id == 7
    with pytest.raises(TokenExpiredError):
        qr.read_token(s, text, village=village, now=issued + timedelta(seconds=61))
    valid, payload = URLSafeTimedSerializer("not-the-key").loads_unsafe(
        text.removeprefix(qr.PHONE_PREFIX)
    )
    assert not valid and payload == {"n": "ab" * 16, "h": 7, "v": 3}


def test_a_code_at_exactly_sixty_seconds_is_refused_by_its_nonce(app, shopworld):
    from points.errors import TokenExpiredError as Expired
    from points.models import Store, Village
    from points.org.access import load_actor
    from points.shop import redemption
    from points.shop.credentials import NonceRef
    from points.shop.redemption import BasketLine

    w = shopworld
    issued = utcnow().replace(microsecond=0) - timedelta(seconds=60)
    text = phone_code(app, w.a.id, w.home1.id, now=issued)
    at_sixty = issued + timedelta(seconds=60)
    village = type("V", (), {"id": w.a.id})()
    ref = qr.read_token(settings(app), text, village=village, now=at_sixty)
    maker = app.extensions["points.sessionmaker"]
    with maker() as s, pytest.raises(Expired):
        redemption.redeem(
            s,
            village=s.get(Village, w.a.id),
            store=s.get(Store, w.shop.store_id),
            basket=[BasketLine(w.shop.goods["肥皂"], 1)],
            actor=load_actor(s, w.users["clerk"].id),
            now=at_sixty,
            nonce=NonceRef(ref.nonce, ref.household_id),
        )


# --- window and threshold ----------------------------------------------------------------------


def test_outside_the_window_and_under_the_threshold_the_refusal_is_clear(client, shopworld, app):
    w = shopworld
    items = [{"good_id": w.shop.goods["肥皂"], "quantity": 1}]
    window = client.put(_url(w, "/redemption-window"), json={"days": 1}, headers=_as(w, "admin"))
    assert window.status_code == 200 and window.json["days"] == 1
    if window.json["open"]:
        pytest.skip("today is the last day of the period: the window is open")
    code = phone_code(app, w.a.id, w.home1.id)
    preview = _scan(client, w, code, items).json
    assert preview["can_redeem"] is False
    assert preview["refusal"]["code"] == "outside_redemption_window"
    r = _redeem(client, w, code, items)
    assert r.status_code == 409 and r.json["error"] == "outside_redemption_window"
    assert window.json["closes_on"] in r.json["message"]

    client.put(_url(w, "/redemption-window"), json={"days": None}, headers=_as(w, "admin"))
    set_threshold(app, w.a.id, 10_000)
    r = _redeem(client, w, code, items)
    assert r.status_code == 409 and r.json["error"] == "below_threshold"
    assert "10000 分" in r.json["message"]
    set_threshold(app, w.a.id, 0)
    assert _redeem(client, w, code, items).status_code == 201  # the refusals spent nothing


def test_too_few_points_or_an_empty_shelf_spends_nothing(client, shopworld, app):
    w = shopworld
    oil = w.shop.goods["食用油"]
    code = phone_code(app, w.a.id, w.home1.id)
    r = _redeem(client, w, code, [{"good_id": oil, "quantity": 7}])
    assert r.status_code == 409 and r.json["error"] == "insufficient_points"
    r = _redeem(client, w, code, [{"good_id": w.shop.goods["肥皂"], "quantity": 21}])
    assert r.status_code == 409 and r.json["error"] == "out_of_stock"
    assert "剩余 20块" in r.json["message"]
    assert _redeem(client, w, code, [{"good_id": oil, "quantity": 1}]).status_code == 201


# --- cancel ------------------------------------------------------------------------------------


def test_an_admin_cancels_the_same_day(client, shopworld, app):
    w = shopworld
    code = phone_code(app, w.a.id, w.home1.id)
    start = _balance(client, w, w.home1)
    receipt = _redeem(client, w, code, [{"good_id": w.shop.goods["大米"], "quantity": 2}]).json
    url = _url(w, f"/redemptions/{receipt['id']}/cancel")
    assert client.post(url, json={"reason": "拿错"}, headers=_as(w, "clerk")).status_code == 403
    done = client.post(url, json={"reason": "拿错了"}, headers=_as(w, "admin"))
    assert done.status_code == 200 and done.json["state"] == "cancelled"
    assert done.json["reversal_entry_id"] and done.json["cancel_reason"] == "拿错了"
    assert _balance(client, w, w.home1) == start
    assert _goods(client, w)["大米"]["stock"] == 20
    twice = client.post(url, json={"reason": "再撤"}, headers=_as(w, "admin"))
    assert twice.status_code == 409 and twice.json["error"] == "cancel_not_allowed"
    moves = client.get(
        _url(w, f"/goods/{w.shop.goods['大米']}/stock"), headers=_as(w, "clerk")
    ).json
    assert [m["kind"] for m in moves[:2]] == ["cancellation", "redemption"]


# --- shelves and images ----------------------------------------------------------------------


def test_stock_movements_and_the_low_stock_list(client, shopworld):
    w = shopworld
    soap = w.shop.goods["肥皂"]
    r = client.post(
        _url(w, f"/goods/{soap}/stock"),
        json={"kind": "adjustment", "quantity": -17, "note": "盘点损耗"},
        headers=_as(w, "clerk"),
    )
    assert r.status_code == 201 and r.json["stock_after"] == 3
    low = client.get(_url(w, "/low-stock"), headers=_as(w, "clerk")).json
    assert [g["name"] for g in low] == ["肥皂"] and low[0]["low"] is True
    r = client.post(
        _url(w, f"/goods/{soap}/stock"),
        json={"kind": "donation", "quantity": 30, "source": "县农商行"},
        headers=_as(w, "clerk"),
    )
    assert r.json["stock_after"] == 33
    assert client.get(_url(w, "/low-stock"), headers=_as(w, "clerk")).json == []
    r = client.post(
        _url(w, f"/goods/{soap}/stock"),
        json={"kind": "adjustment", "quantity": -34, "note": "x"},
        headers=_as(w, "clerk"),
    )
    assert r.status_code == 409 and "当前库存 33块" in r.json["message"]


def test_the_phone_code_and_counter_code_images_decode(client, shopworld):
    w = shopworld
    png = client.get(_url(w, "/my/qr.png"), headers=_as(w, "resident"))
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.headers["Cache-Control"] == "no-store"
    (text,) = _decode(png.data)
    assert text.startswith(qr.PHONE_PREFIX)
    assert _scan(client, w, text).json["household"]["number"] == w.home1.number
    svg = client.get(_url(w, "/my/qr.svg"), headers=_as(w, "resident"))
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    counter = client.get(
        _url(w, f"/stores/{w.shop.store_id}/counter-code.png"), headers=_as(w, "clerk")
    )
    (url,) = _decode(counter.data)
    assert url.endswith(f"/shop/{w.a.code}/stores/{w.shop.store_id}")


def test_residents_see_only_what_is_on_the_shelf_and_their_own_orders(client, shopworld, app):
    w = shopworld
    soap = w.shop.goods["肥皂"]
    off = client.patch(_url(w, f"/goods/{soap}"), json={"active": False}, headers=_as(w, "admin"))
    assert off.status_code == 200 and off.json["active"] is False
    shelf = client.get(_url(w, f"/stores/{w.shop.store_id}/goods"), headers=_as(w, "resident"))
    assert "肥皂" not in {g["name"] for g in shelf.json}
    client.patch(_url(w, f"/goods/{soap}"), json={"active": True}, headers=_as(w, "admin"))
    order_id = pending_order(app, w)
    assert [o["id"] for o in client.get(_url(w, "/orders"), headers=_as(w, "resident")).json] == [
        order_id
    ]
    cancel = client.post(_url(w, f"/orders/{order_id}/cancel"), headers=_as(w, "resident"))
    assert cancel.status_code == 200 and cancel.json["state"] == "cancelled"
    card_id = live_card(app, w, w.home2)
    assert card_id
