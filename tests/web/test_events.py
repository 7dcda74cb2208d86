"""Event check-in in a real browser (Debian's Chromium, phone-sized): the admin creates an
event and gets its QR and A4 poster; a resident's phone scans the event QR with its camera and
checks in; the clerk at the door scans two household cards with a USB scanner (typed text and
Enter); closing the event puts ONE group award for the three households on the 公示栏."""

from __future__ import annotations

import io

import pytest

from tests.web.conftest import chromium_missing, screenshot_dir

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from PIL import Image  # noqa: E402

from tests.api.conftest import PASSWORD, build_world  # noqa: E402
from tests.web.camera import show_nothing, write_y4m  # noqa: E402
from tests.web.test_roles import check, sign_in  # noqa: E402


@pytest.fixture(scope="module")
def world(server):
    """The API tests' world, a third household in group 1, and household cards for two."""
    from datetime import UTC, datetime

    from api.shop import qr
    from points.models import Group, Village
    from points.shop import credentials
    from tests.factories import make_household

    app, _ = server
    w = build_world(app)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, w.a.id)
        third = make_household(s, village, s.get(Group, w.group1.id), members=1)
        w.third = third.id
        cards, _ = credentials.ensure_cards(
            s,
            village=village,
            actor_id=None,
            now=datetime.now(UTC),
            household_ids=[w.home2.id, third.id],
        )
        w.cards = [qr.card_payload(c.serial) for c in cards]
        w.numbers = sorted([w.home1.number, w.home2.number, third.number])
    return w


def test_qr_scan_and_two_cards_make_three_attendees_and_one_claim_on_notice(
    server, world, browser, camera_file
):
    app, base = server
    w = world

    # The admin creates the meeting (today, all day) and finds its QR and poster.
    admin = sign_in(browser, base, username="u-admin", password=PASSWORD)
    admin.get_by_role("link", name="活动签到").click()
    check(admin, "event-list")
    admin.fill("#ev-title", "冬季村民大会")
    admin.fill("#ev-place", "村委会会议室")
    admin.fill("input[name=start]", "00:00")
    admin.fill("input[name=end]", "23:59")
    admin.select_option("#ev-rule", "household:ZZ-09")
    admin.get_by_role("button", name="创建活动").click()
    admin.wait_for_selector("#event-qr")
    assert "冬季村民大会" in admin.text_content("h1")
    check(admin, "event-admin")
    event_url = admin.url
    qr_png = admin.request.get(admin.get_attribute("#event-qr", "src").join([base, ""]))
    assert qr_png.ok and qr_png.headers["content-type"] == "image/png"
    poster = admin.request.get(admin.get_attribute("#poster", "href").join([base, ""]))
    assert poster.ok and poster.body().startswith(b"%PDF")
    _poster_says(poster.body(), "冬季村民大会", "村委会会议室")

    # The resident points their phone's camera at the poster's QR.
    write_y4m(camera_file, Image.open(io.BytesIO(qr_png.body())).convert("RGB"))
    resident = sign_in(browser, base, phone="13800001111", pin="123456")
    resident.get_by_role("link", name="扫码签到").click()
    check(resident, "event-resident-scan")
    resident.click("#camera-start")
    resident.wait_for_selector("#check-in", timeout=20_000)  # decoded, the event's page opened
    assert "冬季村民大会" in resident.text_content("h1")
    resident.click("#check-in")
    resident.wait_for_selector("#checked-in")
    check(resident, "event-resident-done")
    show_nothing(camera_file)
    resident.context.close()

    # The clerk at the door: a USB scanner types each card's code and presses Enter.
    clerk = sign_in(browser, base, username="u-clerk", password=PASSWORD)
    clerk.goto(event_url)
    for card in w.cards:
        clerk.click("#wedge")
        clerk.keyboard.type(card)
        clerk.keyboard.press("Enter")
        clerk.wait_for_selector(".flash.ok")
        assert "签到成功" in clerk.text_content(".flash.ok")
    # The same card again is refused, in Chinese, and counts nothing.
    clerk.click("#wedge")
    clerk.keyboard.type(w.cards[0])
    clerk.keyboard.press("Enter")
    assert "本户已经签到过了" in clerk.text_content(".flash.error")
    assert clerk.text_content("#count") == "3"
    numbers = clerk.locator("#attendees tbody td:first-child").all_text_contents()
    assert sorted(numbers) == w.numbers
    check(clerk, "event-door")
    assert clerk.locator("#close").count() == 0  # only the admin closes
    clerk.context.close()

    # The admin closes the event: one group award, on public notice, with the list.
    admin.goto(event_url)
    assert admin.text_content("#count") == "3"
    admin.click("#close")
    admin.wait_for_selector("#closed-note")
    assert "3 户" in admin.text_content(".flash.ok")
    admin.get_by_role("link", name="公示栏").last.click()
    admin.wait_for_load_state()
    admin.screenshot(path=str(screenshot_dir() / "event-notice.png"), full_page=True)
    rows = [t for t in admin.locator("tr, li").all_text_contents() if "冬季村民大会" in t]
    assert len(rows) == 1, rows
    assert "3 户" in rows[0]
    admin.context.close()

    from points.models import Claim, ClaimBatch

    with app.extensions["points.sessionmaker"]() as s:
        batch = s.query(ClaimBatch).filter(ClaimBatch.title == "冬季村民大会").one()
        claims = s.query(Claim).filter(Claim.batch_id == batch.id).all()
        assert len(claims) == 3 and {c.status for c in claims} == {"in_notice"}
        assert all(n in claims[0].description for n in w.numbers)


def _poster_says(pdf: bytes, *texts: str) -> None:
    import pypdfium2

    doc = pypdfium2.PdfDocument(pdf)
    try:
        assert len(doc) == 1
        text = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    for t in texts:
        assert t in text, text
