"""The shop pages through the Flask test client: the counter (scan, price, confirm, receipt,
orders, stock, camera decode) and the resident's code and shop. The real-browser walk-through
with a fake camera lives in tests/web."""

from __future__ import annotations

import io
import re

import pytest
import qrcode
from sqlalchemy import select

from api.shop import qr
from points.models import AuditEvent, Household, HouseholdCard, Redemption
from tests.api.conftest import PASSWORD
from tests.api.shop_world import build_shop, live_card, pending_order, phone_code


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(app, **creds):
    client = app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, **creds})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def _clerk(app):
    return _login(app, username="u-clerk", password=PASSWORD)


def _resident(app):
    return _login(app, phone="13800001111", pin="123456")


@pytest.fixture
def shop_world(app, world):
    build_shop(app, world)
    return world


def _counter(client, w):
    response = client.get(f"/v/{w.a.code}/counter")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _scan(client, w, text, **extra):
    page = _counter(client, w)
    return client.post(
        f"/v/{w.a.code}/counter/scan",
        data={"csrf_token": _token(page), "code": text, **extra},
        follow_redirects=True,
    )


def _head_masked(app, w):
    with app.extensions["points.sessionmaker"]() as s:
        home = s.get(Household, w.home1.id)
        head = next(m for m in home.members if m.id == home.head_id)
        return head.name, head.name[0] + "*" * (len(head.name) - 2) + head.name[-1]


def test_clerk_lands_on_the_counter(app, shop_world):
    client = app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"csrf_token": token, "username": "u-clerk", "password": PASSWORD}
    )
    assert response.headers["Location"].endswith(f"/v/{shop_world.a.code}/counter")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="wedge"' in page and "counter.js" in page and "村积分超市" in page


def test_wedge_scan_previews_masked_name_and_balance(app, shop_world):
    w = shop_world
    client = _clerk(app)
    response = _scan(client, w, phone_code(app, w.a.id, w.home1.id))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    full, masked = _head_masked(app, w)
    assert masked in page and full not in page
    assert re.search(r'id="available">530<', page)  # 30 seeded + 500 funded
    assert 'id="confirm" disabled' in page  # nothing in the basket yet


def test_confirm_spends_and_prints_a_receipt_with_proxy_in_the_audit(app, shop_world):
    w = shop_world
    client = _clerk(app)
    soap, rice = w.shop.goods["肥皂"], w.shop.goods["大米"]
    code = phone_code(app, w.a.id, w.home1.id)
    page = _scan(client, w, code, **{f"qty-{soap}": "2", f"qty-{rice}": "1"}).get_data(as_text=True)
    assert re.search(r'id="total">60 分<', page) and re.search(r'id="after">470 分<', page)
    assert 'id="confirm" disabled' not in page
    priced = re.search(r'name="priced" value="([^"]*)"', page).group(1)
    response = client.post(
        f"/v/{w.a.code}/counter/redeem",
        data={
            "csrf_token": _token(page),
            "checkout": code,
            "priced": priced,
            f"qty-{soap}": "2",
            f"qty-{rice}": "1",
            "proxy": "1",
            "proxy_note": "儿子代领",
        },
    )
    assert response.status_code == 302 and "/counter/receipts/" in response.headers["Location"]
    receipt = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "兑换小票" in receipt and re.search(r'id="receipt-total">60 分<', receipt)
    assert re.search(r'id="receipt-balance">470 分<', receipt) and "代办" in receipt
    with app.extensions["points.sessionmaker"]() as s:
        r = s.scalars(select(Redemption)).one()
        assert (r.total, r.proxy, r.proxy_note, r.method) == (60, True, "儿子代领", "phone")
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "redemption.create")).one()
        assert event.details["proxy"] is True and "代办" in event.summary
    # The code was single use: confirming again is refused and spends nothing.
    again = client.post(
        f"/v/{w.a.code}/counter/redeem",
        data={"csrf_token": _token(page), "checkout": code, "priced": priced, f"qty-{soap}": "2"},
        follow_redirects=True,
    )
    assert "已使用" in again.get_data(as_text=True) or "已经使用" in again.get_data(as_text=True)
    home = _resident(app).get(f"/v/{w.a.code}/my/").get_data(as_text=True)
    assert re.search(r'id="available">470<', home)


def test_changed_quantities_are_priced_again_before_spending(app, shop_world):
    w = shop_world
    client = _clerk(app)
    soap = w.shop.goods["肥皂"]
    code = phone_code(app, w.a.id, w.home1.id)
    page = _scan(client, w, code, **{f"qty-{soap}": "1"}).get_data(as_text=True)
    response = client.post(
        f"/v/{w.a.code}/counter/redeem",
        data={
            "csrf_token": _token(page),
            "checkout": code,
            "priced": f"{soap}:1",
            f"qty-{soap}": "3",
        },
    )
    page = response.get_data(as_text=True)
    assert (
        response.status_code == 200 and "请核对" in page and re.search(r'id="total">15 分<', page)
    )
    with app.extensions["points.sessionmaker"]() as s:
        assert s.scalars(select(Redemption)).all() == []


def test_household_card_by_wedge_gets_a_checkout_code(app, shop_world):
    w = shop_world
    card_id = live_card(app, w, w.home2)
    with app.extensions["points.sessionmaker"]() as s:
        serial = s.get(HouseholdCard, card_id).serial
    client = _clerk(app)
    soap = w.shop.goods["肥皂"]
    page = _scan(client, w, qr.card_payload(serial), **{f"qty-{soap}": "1"}).get_data(as_text=True)
    assert "户卡" in page and re.search(r'id="available">500<', page)
    checkout = re.search(r'name="checkout" value="([^"]+)"', page).group(1)
    assert checkout.startswith(qr.CHECKOUT_PREFIX)
    response = client.post(
        f"/v/{w.a.code}/counter/redeem",
        data={
            "csrf_token": _token(page),
            "checkout": checkout,
            "priced": f"{soap}:1",
            f"qty-{soap}": "1",
        },
        follow_redirects=True,
    )
    assert re.search(r'id="receipt-balance">495 分<', response.get_data(as_text=True))


def test_bad_codes_say_why(app, shop_world):
    client = _clerk(app)
    page = _scan(client, shop_world, "PTS1:forged").get_data(as_text=True)
    assert 'class="flash error"' in page and 'id="wedge"' in page
    page = _scan(client, shop_world, "https://example.org/shop/x/stores/1").get_data(as_text=True)
    assert "柜台码" in page


def test_counter_forms_need_the_csrf_token(app, shop_world):
    w = shop_world
    client = _clerk(app)
    code = phone_code(app, w.a.id, w.home1.id)
    for path, data in (
        ("scan", {"code": code}),
        ("redeem", {"checkout": code, "priced": ""}),
        ("decode", {}),
        ("stock", {"good_id": w.shop.goods["肥皂"], "kind": "donation", "quantity": "5"}),
    ):
        response = client.post(f"/v/{w.a.code}/counter/{path}", data=data)
        assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)


def test_counter_is_for_shopkeepers_only(app, shop_world):
    w = shop_world
    resident = _resident(app)
    assert resident.get(f"/v/{w.a.code}/counter").status_code == 403
    recorder = _login(app, username="u-recorder", password=PASSWORD)
    assert recorder.get(f"/v/{w.a.code}/counter/stock").status_code == 403
    assert app.test_client().get(f"/v/{w.a.code}/counter").status_code == 302  # to sign-in


def test_pending_orders_are_collected_at_the_counter(app, shop_world):
    w = shop_world
    order_id = pending_order(app, w, quantity=2)
    client = _clerk(app)
    page = _counter(client, w)
    assert f"订单 {order_id}" in page
    response = client.post(
        f"/v/{w.a.code}/counter/orders/{order_id}/collect",
        data={"csrf_token": _token(page)},
        follow_redirects=True,
    )
    assert re.search(r'id="receipt-total">10 分<', response.get_data(as_text=True))
    assert f"订单 {order_id}" not in _counter(client, w)


def test_stock_page_lists_low_stock_and_records_goods_received(app, shop_world):
    w = shop_world
    client = _clerk(app)
    page = client.get(f"/v/{w.a.code}/counter/stock").get_data(as_text=True)
    assert "所有商品库存充足" in page
    soap = w.shop.goods["肥皂"]
    response = client.post(
        f"/v/{w.a.code}/counter/stock",
        data={
            "csrf_token": _token(page),
            "good_id": soap,
            "kind": "adjustment",
            "quantity": "-18",
            "note": "盘点破损",
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "现有 2块" in page and 'id="low-stock"' in page and "肥皂：剩 2块" in page


def _qr_png(text: str) -> bytes:
    buf = io.BytesIO()
    qrcode.make(text).save(buf, format="PNG")
    return buf.getvalue()


def test_decode_reads_a_camera_frame(app, shop_world):
    w = shop_world
    client = _clerk(app)
    token = _token(_counter(client, w))
    headers = {"X-CSRF-Token": token, "Content-Type": "image/png"}
    url = f"/v/{w.a.code}/counter/decode"
    response = client.post(url, data=_qr_png("PTSCARD:ABCD-EFGH"), headers=headers)
    assert response.status_code == 200 and response.json == {"text": "PTSCARD:ABCD-EFGH"}
    blank = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (64, 64), "white").save(blank, format="PNG")
    assert client.post(url, data=blank.getvalue(), headers=headers).json == {"text": None}
    assert client.post(url, data=b"not an image", headers=headers).status_code == 400
    resident = _resident(app)
    token = _token(resident.get(f"/v/{w.a.code}/my/").get_data(as_text=True))
    response = resident.post(url, data=_qr_png("x"), headers={"X-CSRF-Token": token})
    assert response.status_code == 403


def test_my_qr_page_and_image_carry_a_fresh_phone_code(app, shop_world):
    import zxingcpp
    from PIL import Image

    w = shop_world
    client = _resident(app)
    page = client.get(f"/v/{w.a.code}/my/qr").get_data(as_text=True)
    assert "我的兑换码" in page and "myqr.js" in page and 'data-seconds="60"' in page
    response = client.get(f"/v/{w.a.code}/my/qr.png")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    text = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.data)))[0].text
    assert text.startswith(qr.PHONE_PREFIX)
    page = _scan(_clerk(app), w, text).get_data(as_text=True)
    assert re.search(r'id="available">530<', page)
    assert "兑换码" in client.get(f"/v/{w.a.code}/my/").get_data(as_text=True)  # in the nav


def test_resident_shop_orders_and_cancels(app, shop_world):
    w = shop_world
    client = _resident(app)
    page = client.get(f"/v/{w.a.code}/my/shop").get_data(as_text=True)
    assert "肥皂" in page and "大米" in page and 'id="shop-available">530<' in page
    soap = w.shop.goods["肥皂"]
    page = client.post(
        f"/v/{w.a.code}/my/shop/order",
        data={"csrf_token": _token(page), "store_id": w.shop.store_id, f"qty-{soap}": "3"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "已下单" in page and "待取货" in page and "肥皂 × 3块" in page
    order_id = int(re.search(r"订单 (\d+)）", page).group(1))
    page = client.post(
        f"/v/{w.a.code}/my/shop/orders/{order_id}/cancel",
        data={"csrf_token": _token(page)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"订单 {order_id} 已取消" in page
    assert (
        client.post(
            f"/v/{w.a.code}/my/shop/order", data={"store_id": w.shop.store_id, f"qty-{soap}": "1"}
        ).status_code
        == 400
    )


def test_counter_code_opens_the_store_page(app, shop_world):
    w = shop_world
    url = qr.counter_url("http://localhost/", w.a.code, w.shop.store_id)
    path = url.removeprefix("http://localhost")
    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    response = _resident(app).get(path, follow_redirects=True)
    assert response.status_code == 200 and "下单（到店取货）" in response.get_data(as_text=True)
