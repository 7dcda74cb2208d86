"""The walk-through in a real browser (Debian's Chromium, headless, fake camera): a grid worker
records an event for several households, a reviewer approves a claim that needs review, the
notice is on the public board, a clerk redeems a resident's phone code read by the CAMERA, the
resident sees the points spent, and the public pages render; a USB scanner's keystrokes
redeem a household card. Screenshots of each page go to POINTS_SCREENSHOTS."""

from __future__ import annotations

import io
import re
import time

import pytest

from tests.web.conftest import chromium_missing, screenshot_dir

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from PIL import Image  # noqa: E402

from tests.api.conftest import PASSWORD, build_world  # noqa: E402
from tests.api.shop_world import build_shop, live_card  # noqa: E402
from tests.web.camera import show_nothing, show_qr  # noqa: E402

PHONE = {"viewport": {"width": 412, "height": 860}, "device_scale_factor": 1, "is_mobile": True}
COUNTER_PC = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def world(server):
    app, _ = server
    w = build_world(app)
    build_shop(app, w)
    # Two more households in the grid worker's group, for an event with several ticked.
    from points.models import Group, Village
    from tests.factories import make_household

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village, group = s.get(Village, w.a.id), s.get(Group, w.group1.id)
        w.extra = [make_household(s, village, group, members=2).id for _ in range(2)]
    return w


def shot(page, name: str) -> None:
    page.screenshot(path=str(screenshot_dir() / f"{name}.png"), full_page=True)


def sign_in(browser, base, device=PHONE, **creds):
    context = browser.new_context(locale="zh-CN", **device)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/login")
    if "phone" in creds:
        page.fill("input[name=phone]", creds["phone"])
        page.fill("input[name=pin]", creds["pin"])
        page.locator("input[name=pin]").press("Enter")
    else:
        page.fill("input[name=username]", creds["username"])
        page.fill("input[name=password]", creds["password"])
        page.locator("input[name=password]").press("Enter")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()
    return page


def test_record_review_notice_camera_redeem_and_public_pages(server, world, browser, camera_file):
    app, base = server
    w, code = world, world.a.code
    started = time.monotonic()

    # A grid worker, on a phone, records a village meeting for three households at once.
    page = sign_in(browser, base, username="u-recorder", password=PASSWORD)
    assert page.url.endswith(f"/v/{code}/record")
    page.select_option("#rule", "ZZ-09")
    page.fill("input[name=title]", "村民大会")
    for home_id in (w.home1.id, *w.extra):
        page.check(f"input[name=household_id][value='{home_id}']")
    shot(page, "01-record-batch")
    page.click("#submit-record")
    assert "已为 3 户登记“村民大会”" in page.text_content(".flash.ok")
    # …and a deduction, which always goes to the review group first.
    page.select_option("#rule", "FZ-51")
    page.fill("textarea[name=description]", "聚众赌博")
    page.check(f"input[name=household_id][value='{w.home1.id}']")
    page.click("#submit-record")
    assert "待审核" in page.text_content(".flash.ok")
    page.context.close()

    # The reviewer approves it; it goes on the notice board (公示).
    page = sign_in(browser, base, username="u-reviewer", password=PASSWORD)
    page.goto(f"{base}/v/{code}/review")
    assert "赌博" in page.content()
    shot(page, "02-review")
    page.locator("button[value=approve]").first.click()
    assert "进入公示" in page.text_content(".flash.ok")
    page.context.close()

    public = browser.new_context(locale="zh-CN", **PHONE).new_page()
    public.goto(f"{base}/public/{code}/notices")
    assert "赌博" in public.content() and "参加村民会议" in public.content()
    shot(public, "03-public-notices")

    # The resident opens their code; we read it off the screen as a phone camera would.
    resident = sign_in(browser, base, phone="13800001111", pin="123456")
    assert re.search(r"^\s*530\s*$", resident.text_content("#available"))
    shot(resident, "04-resident-home-before")
    resident.goto(f"{base}/v/{code}/my/qr")
    resident.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    shot(resident, "05-resident-qr")
    payload = _read_qr(resident.locator("#qr").screenshot())
    assert payload.startswith("PTS1:")

    # The clerk, at the counter PC, scans it with the camera.
    show_qr(camera_file, payload)
    clerk = sign_in(browser, base, device=COUNTER_PC, username="u-clerk", password=PASSWORD)
    assert clerk.url.endswith(f"/v/{code}/counter")
    shot(clerk, "06-counter")
    scan_started = time.monotonic()
    clerk.click("#camera-start")
    clerk.wait_for_selector("#head-name", timeout=20_000)
    camera_seconds = time.monotonic() - scan_started
    assert "户主" in clerk.text_content("#head-name") and "*" in clerk.text_content("#head-name")
    assert clerk.text_content("#available").strip() == "530"
    soap = w.shop.goods["肥皂"]
    clerk.fill(f"input[name=qty-{soap}]", "2")
    clerk.click("#reprice")
    assert clerk.text_content("#total").strip() == "10 分"
    shot(clerk, "07-counter-preview")
    clerk.click("#confirm")
    clerk.wait_for_selector("#receipt")
    assert clerk.text_content("#receipt-balance").strip() == "520 分"
    shot(clerk, "08-receipt")
    show_nothing(camera_file)

    # The resident sees the points spent, with the reason.
    resident.goto(f"{base}/v/{code}/my/")
    assert resident.text_content("#available").strip() == "520"
    assert "肥皂×2" in resident.text_content("#history")
    shot(resident, "09-resident-home-after")
    resident.goto(f"{base}/v/{code}/my/shop")
    assert "肥皂" in resident.text_content("#my-receipts")
    shot(resident, "10-resident-shop")

    # The public pages: the rules in force, and the boards where they exist.
    public.goto(f"{base}/public/{code}/rules")
    assert "庭院整洁" in public.content()
    shot(public, "11-public-rules")
    if any(r.rule.startswith("/public/<code>/boards") for r in app.url_map.iter_rules()):
        response = public.goto(f"{base}/public/{code}/boards")
        assert response.ok
        shot(public, "12-public-boards")
    for context in (resident.context, clerk.context, public.context):
        context.close()
    print(f"walk-through {time.monotonic() - started:.1f} s, camera scan {camera_seconds:.1f} s")


def test_keyboard_wedge_scans_a_household_card_for_an_elderly_resident(server, world, browser):
    app, base = server
    w, code = world, world.a.code
    from points.models import HouseholdCard

    card_id = live_card(app, w, w.home2)
    with app.extensions["points.sessionmaker"]() as s:
        serial = s.get(HouseholdCard, card_id).serial
    clerk = sign_in(browser, base, device=COUNTER_PC, username="u-clerk", password=PASSWORD)
    clerk.reload()  # no 304s: count every byte the counter page needs
    weight = clerk.evaluate(
        "performance.getEntries().filter(e => 'decodedBodySize' in e)"
        ".reduce((n, e) => n + e.decodedBodySize, 0)"
    )
    assert 0 < weight < 150_000, f"the counter page weighs {weight} bytes"
    clerk.click("#wedge")
    clerk.keyboard.type(f"PTSCARD:{serial}")  # what a USB scanner types…
    clerk.keyboard.press("Enter")  # …followed by Enter
    clerk.wait_for_selector("#head-name")
    assert clerk.text_content("#available").strip() == "500"
    clerk.fill(f"input[name=qty-{w.shop.goods['洗衣粉']}]", "1")
    clerk.click("#reprice")
    clerk.check("#proxy")
    clerk.fill("input[name=proxy_note]", "邻居代领")
    shot(clerk, "13-card-preview")
    clerk.click("#confirm")
    clerk.wait_for_selector("#receipt")
    receipt = clerk.text_content("#receipt")
    assert "户卡" in receipt and "代办" in receipt and "邻居代领" in receipt
    assert clerk.text_content("#receipt-balance").strip() == "480 分"
    clerk.goto(f"{base}/v/{code}/counter/stock")
    shot(clerk, "14-stock")
    clerk.context.close()


def test_my_code_refreshes_before_it_expires(server, world, browser):
    _, base = server
    page = sign_in(browser, base, phone="13800001111", pin="123456")
    page.clock.install()
    page.goto(f"{base}/v/{world.a.code}/my/qr")
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    first = page.get_attribute("#qr", "src")
    page.clock.run_for(52_000)
    page.wait_for_function("document.getElementById('qr').src.indexOf('?t=') > 0", timeout=5000)
    page.wait_for_function("document.getElementById('qr').complete")
    assert page.get_attribute("#qr", "src") != first
    assert _read_qr(page.locator("#qr").screenshot()).startswith("PTS1:")
    page.context.close()


def _read_qr(png: bytes) -> str:
    import zxingcpp

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "no QR code on the screen"
    return found[0].text
