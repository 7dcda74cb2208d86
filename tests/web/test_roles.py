"""Each role's main task on a phone (360 × 740) in a real browser (Debian's Chromium): the task
done end to end, every page on the way checked with axe-core (no serious or critical
violation), header tap targets at least 44 px, nothing wider than the screen; and every link
of the role's menu answers without an error."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest

from tests.web.conftest import chromium_missing, screenshot_dir

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from PIL import Image  # noqa: E402

from tests.api.conftest import PASSWORD, build_world  # noqa: E402
from tests.api.shop_world import build_shop, phone_code  # noqa: E402

PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 1,
    "is_mobile": True,
    "has_touch": True,
}
AXE = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
WIDTH = PHONE["viewport"]["width"]


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def world(server):
    """The API tests' world, a shop, two more households in the grid worker's group, a claim
    with a photo waiting for review, an event on notice, and last month's points (a board)."""
    from points import claims, ledger
    from points.ledger.statements import get_scheme
    from points.models import Evidence, Group, Village
    from points.org.access import load_actor
    from points.periods import LOCAL_TZ
    from tests.factories import make_household

    app, _ = server
    w = build_world(app)
    build_shop(app, w)
    now = datetime.now(UTC)
    first = now.astimezone(LOCAL_TZ).replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=15, hour=12)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village, group = s.get(Village, w.a.id), s.get(Group, w.group1.id)
        w.extra = [make_household(s, village, group, members=2).id for _ in range(2)]
        scheme = get_scheme(s, village=village, code="household")
        admin = load_actor(s, w.users["admin"].id)
        pending = claims.record(
            s,
            village=village,
            scheme=scheme,
            actor=admin,
            now=now,
            item=claims.ClaimInput(
                household_id=w.home2.id,
                rule_code="SHAN-01",
                occurred_on=now.date(),
                proposed_points=10,
                description="救起落水儿童",
                has_evidence=True,
            ),
        )
        w.pending = pending.id
        claims.record_batch(
            s,
            village=village,
            scheme=scheme,
            actor=admin,
            title="村庄大扫除",
            rule_code="ZZ-09",
            occurred_on=now.date(),
            subjects=[(w.home2.id, None), (w.extra[0], None), (w.extra[1], None)],
            now=now,
        )
        for home_id in (w.home1.id, w.home2.id):
            ledger.award(
                s,
                scheme=scheme,
                subject_id=home_id,
                points=5,
                idem_key=f"last-month-{home_id}",
                actor_id=None,
                now=last_month,
                memo="打扫卫生",
                category="德治",
            )
    with app.app_context():
        from api.claims.evidence import store_photo

        name, content_type, size = store_photo(w.a.id, _jpeg())
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        s.add(
            Evidence(
                village_id=w.a.id,
                claim_id=w.pending,
                stored_name=name,
                content_type=content_type,
                size=size,
                created_at=now,
            )
        )
    return w


def _context(browser):
    # bypass_csp: axe-core is injected by the test, not served by the app.
    return browser.new_context(locale="zh-CN", bypass_csp=True, **PHONE)


def sign_in(browser, base, **creds):
    page = _context(browser).new_page()
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


def check(page, name: str) -> None:
    """axe-core finds no serious or critical violation; the header's links and buttons are at
    least 44 × 44 px; nothing is wider than the phone's screen."""
    page.screenshot(path=str(screenshot_dir() / f"role-{name}.png"), full_page=True)
    page.add_script_tag(content=AXE)
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations'],"
        " runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',"
        " 'best-practice']}})"
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: axe-core violations {bad}"
    small = page.evaluate(
        """() => [...document.querySelectorAll('header.top a, header.top button')]
             .filter(e => e.offsetParent !== null)
             .map(e => { const r = e.getBoundingClientRect();
                         return [e.textContent.trim(), Math.round(r.width), Math.round(r.height)]; })
             .filter(([, w, h]) => w < 44 || h < 44)"""
    )
    assert not small, f"{name}: header tap targets under 44 px: {small}"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{name}: the page is {width} px wide on a {WIDTH} px screen"


def menu_answers(page) -> None:
    """Every link in the header menu answers without an error, for this user."""
    links = page.eval_on_selector_all(
        "header.top nav a", "els => els.map(e => [e.textContent.trim(), e.href])"
    )
    assert links
    broken = []
    for text, href in links:
        if "/big-type" in href:
            continue  # a toggle (大字模式), not a page
        response = page.request.get(href)
        if response.status >= 400:
            broken.append((text, href, response.status))
    assert not broken, f"menu links answering an error: {broken}"


# --- the roles -----------------------------------------------------------------------------------


def test_grid_worker_records_with_a_photo_without_losing_work(server, world, browser):
    app, base = server
    w, code = world, world.a.code
    page = sign_in(browser, base, username="u-recorder", password=PASSWORD)
    assert page.url.endswith(f"/v/{code}/record")
    check(page, "recorder-record")
    page.evaluate("window.__same_page = true")
    # Searching filters on the page: no reload, and what is ticked stays ticked.
    page.check(f"input[name=household_id][value='{w.extra[0]}']")
    page.fill("#search", w.home1.number)
    assert page.is_hidden(f"input[name=household_id][value='{w.extra[0]}']")
    assert page.is_visible(f"input[name=household_id][value='{w.home1.id}']")
    page.fill("#search", "")
    assert page.evaluate("window.__same_page") is True
    page.check(f"input[name=household_id][value='{w.home1.id}']")
    assert page.text_content("#submit-record").strip() == "提交登记（已选 2 户）"
    # The submit bar is in reach without scrolling to the bottom.
    box = page.locator("#submit-record").bounding_box()
    assert box and box["y"] + box["height"] <= PHONE["viewport"]["height"]
    # The item says it needs a photo before submitting; without one it is refused, and
    # nothing typed or ticked is lost.
    page.select_option("#rule", "SHAN-01")
    assert "需附照片" in page.text_content("#rule-needs")
    page.fill("input[name=proposed_points]", "10")
    page.fill("input[name=title]", "抗洪抢险")
    page.fill("textarea[name=description]", "连夜加固河堤")
    page.click("#submit-record")
    page.wait_for_selector(".flash.error")
    assert "证明材料" in page.text_content(".flash.error")
    assert page.evaluate("window.__same_page") is True
    assert page.input_value("#rule") == "SHAN-01"
    assert page.input_value("textarea[name=description]") == "连夜加固河堤"
    assert page.is_checked(f"input[name=household_id][value='{w.extra[0]}']")
    # With the photo (a 签到表), the event is recorded for both households.
    page.set_input_files(
        "input[name=photos]",
        files=[{"name": "sign-in.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}],
    )
    page.click("#submit-record")
    page.wait_for_selector(".flash.ok")
    assert "已为 2 户登记“抗洪抢险”" in page.text_content(".flash.ok")
    check(page, "recorder-recorded")
    page.context.close()


def test_reviewer_sees_the_photo_and_approves(server, world, browser):
    _, base = server
    page = sign_in(browser, base, username="u-reviewer", password=PASSWORD)
    page.goto(f"{base}/v/{world.a.code}/review")
    card = page.locator(f"#claim-{world.pending}")
    image = card.locator("img").first
    image.wait_for()
    page.wait_for_function(f"document.querySelector('#claim-{world.pending} img').naturalWidth > 0")
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [64, 48]
    check(page, "reviewer-review")
    card.locator("button[value=approve]").click()
    assert "进入公示" in page.text_content(".flash.ok")
    page.context.close()


def test_clerk_sees_live_totals_and_redeems(server, world, browser):
    app, base = server
    w = world
    page = sign_in(browser, base, username="u-clerk", password=PASSWORD)
    assert page.url.endswith(f"/v/{w.a.code}/counter")
    check(page, "clerk-counter")
    page.fill("#wedge", phone_code(app, w.a.id, w.home1.id))
    page.locator("#wedge").press("Enter")
    page.wait_for_selector("#head-name")
    available = int(page.text_content("#available"))
    soap, oil = w.shop.goods["肥皂"], w.shop.goods["食用油"]
    page.fill(f"input[name=qty-{soap}]", "2")
    assert page.text_content("#live-total").strip() == "10"  # no 计算合计 needed
    page.fill(f"input[name=qty-{oil}]", "9")
    assert "积分不足" in page.text_content("#live-after")
    assert "-" not in page.text_content("#live-after")
    page.fill(f"input[name=qty-{oil}]", "")
    assert page.text_content("#live-after").strip() == f"兑换后余额 {available - 10} 分"
    check(page, "clerk-preview")
    page.click("#confirm")  # changed after pricing: the server shows the new total once
    page.wait_for_selector("#total")
    page.click("#confirm")
    page.wait_for_selector("#receipt")
    assert page.text_content("#receipt-balance").strip() == f"{available - 10} 分"
    page.context.close()


def test_resident_sees_points_declares_and_objects(server, world, browser):
    _, base = server
    code = world.a.code
    page = sign_in(browser, base, phone="13800001111", pin="123456")
    assert page.url.endswith(f"/v/{code}/my/")
    check(page, "resident-home")
    page.goto(f"{base}/v/{code}/my/declare")
    assert page.input_value("#rule") == ""  # nothing preselected
    check(page, "resident-declare")
    page.select_option("#rule", "SHAN-01")
    page.fill("input[name=proposed_points]", "8")
    page.fill("textarea[name=description]", "帮邻居抢收玉米")
    page.set_input_files(
        "input[name=photos]",
        files=[{"name": "deed.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}],
    )
    page.click("#declare-form button[type=submit]")
    assert "申报已提交" in page.text_content(".flash.ok")
    assert "见义勇为" in page.text_content("#pending")
    page.goto(f"{base}/v/{code}/my/notices")
    rows = page.locator("li.notice-row")
    batch = rows.filter(has_text="村庄大扫除")
    assert batch.count() == 1 and "3 户" in batch.text_content()
    check(page, "resident-notices")
    batch.locator("summary").click()
    batch.locator("input[name=reason]").fill("我家那天没人参加")
    batch.locator("button[type=submit]").click()
    assert "异议已提交" in page.text_content(".flash.ok")
    page.context.close()


def test_admin_drafts_and_publishes_the_board(server, world, browser):
    _, base = server
    page = sign_in(browser, base, username="u-admin", password=PASSWORD)
    page.goto(f"{base}/v/{world.a.code}/boards")
    page.click("#draft-board")
    page.wait_for_selector("#board-approve")
    assert "（草稿）" in page.text_content(".flash.ok")
    check(page, "admin-board-draft")
    page.context.close()
    # Maker ≠ checker: a second 村两委 member approves and publishes the draft.
    page = sign_in(browser, base, username="u-admin2", password=PASSWORD)
    page.goto(f"{base}/v/{world.a.code}/boards")
    page.click("#board-approve")
    page.click("#board-publish")
    page.wait_for_selector("code.hash")
    assert "（已发布）" in page.text_content(".flash.ok")
    check(page, "admin-board-published")
    page.context.close()


def test_admin_phone_menu_leaves_room_for_the_page(server, world, browser):
    """On a phone the day's work is in the header and setting up is one tap away (管理设置)."""
    _, base = server
    page = sign_in(browser, base, username="u-admin", password=PASSWORD)
    page.goto(f"{base}/v/{world.a.code}/review")
    header = page.locator("header.top").bounding_box()
    assert header["height"] < PHONE["viewport"]["height"] / 2, f"header {header['height']} px"
    assert page.locator("header.top nav a", has_text="审核").is_visible()
    roster = page.locator("header.top nav a", has_text="花名册")
    assert roster.count() == 1 and not roster.is_visible()
    check(page, "admin-menu-folded")
    page.locator("header.top summary", has_text="管理设置").click()
    assert roster.is_visible()
    check(page, "admin-menu-open")
    with page.expect_navigation():
        roster.click()
    # On a setting-up page the fold is open and the page is marked, so the clerk sees where
    # they are.
    current = page.locator("header.top nav a[aria-current=page]")
    assert current.inner_text() == "花名册" and current.is_visible()
    page.context.close()


def test_supervisor_picks_a_month_and_opens_a_village(server, world, browser):
    _, base = server
    page = sign_in(browser, base, username="u-supervisor", password=PASSWORD)
    assert "/town/" in page.url
    check(page, "supervisor-town")
    page.fill("input[name=month]", "2026-10")
    page.click("#month-picker button")
    page.wait_for_url("**month=2026-10**")
    assert "2026年10月" in page.text_content("h1")
    page.click(f"#town a[href='/public/{world.a.code}/notices']")
    page.wait_for_url(f"**/public/{world.a.code}/notices")
    check(page, "supervisor-village")
    page.context.close()


def test_public_finds_the_board_and_the_rules(server, world, browser):
    _, base = server
    page = _context(browser).new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/")
    check(page, "public-home")
    page.click(f"a[href='/public/{world.a.code}/notices']")
    check(page, "public-notices")
    page.click("header.top nav >> text=红黑榜")
    page.wait_for_url(f"**/public/{world.a.code}/boards")
    check(page, "public-boards")
    page.click("header.top nav >> text=积分标准")
    page.wait_for_url(f"**/public/{world.a.code}/rules")
    check(page, "public-rules")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 3 * PHONE["viewport"]["height"], f"the rules page is {height} px tall"
    page.locator("summary", has_text="积美").click()
    assert page.is_visible("text=(+5) 庭院整洁")
    menu_answers(page)  # the public menu
    missing = page.goto(f"{base}/public/{world.a.code}/board/1999-01")
    assert missing.status == 404 and "找不到" in page.text_content("main")
    check(page, "public-404")
    page.context.close()


# --- every role's menu ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "creds",
    [
        pytest.param({"username": "u-recorder"}, id="grid-worker"),
        pytest.param({"username": "u-reviewer"}, id="reviewer"),
        pytest.param({"username": "u-clerk"}, id="clerk"),
        pytest.param({"username": "u-admin"}, id="admin"),
        pytest.param({"username": "u-supervisor"}, id="supervisor"),
        pytest.param({"phone": "13800001111", "pin": "123456"}, id="resident"),
    ],
)
def test_every_menu_link_answers(server, world, browser, creds):
    _, base = server
    if "username" in creds:
        creds = dict(creds, password=PASSWORD)
    page = sign_in(browser, base, **creds)
    menu_answers(page)
    page.context.close()
