"""The village runs itself from the browser (issue 14's "Done when"), in real Chromium at a
phone's size: from `points village create` and one admin account, using only pages, the admin
imports a roster (a broken file first: problems listed, nothing written), sets two residents'
PINs and prints their slips, creates a grid worker and a reviewer, edits and adopts the catalog
after a dry run, sets the 兑换门槛 and window, adds goods and prints cards; the grid worker
records, the reviewer approves, a resident signs in with the new PIN and redeems at the counter,
and the admin downloads that period's statement. The scheduler's part (posting after 公示,
closing the quarter) is `cycles.reconcile` called as the scheduler would."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import timedelta

import pytest

from tests.web.conftest import chromium_missing, screenshot_dir

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from openpyxl import load_workbook  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from tests.processes import points  # noqa: E402
from tests.web.test_walkthrough import _read_qr, sign_in  # noqa: E402

CODE = "xincun"
ROSTER_HEADER = "户号,小组,门牌,姓名,户主,手机号,党员,党支部,期初积分\n"
BROKEN = ROSTER_HEADER + "001,一组,东街1号,,是,1390000,否,,\n002,一组,,李四,也许,,否,,-3\n"
ROSTER = ROSTER_HEADER + (
    "001,一组,东街1号,张大山,是,13900000001,是,村党支部,\n"
    "001,一组,东街1号,张小山,否,13900000002,否,,\n"
    "002,一组,东街2号,李四,是,13900000003,否,,\n"
    "003,二组,西街1号,王五,是,13900000004,否,,\n"
)


def _points(url: str, *args: str) -> subprocess.CompletedProcess:
    done = points(url, *args)
    assert done.returncode == 0, done.stderr
    return done


def shot(page, name: str) -> None:
    page.screenshot(path=str(screenshot_dir() / f"admin-{name}.png"), full_page=True)


def _flash(page) -> str:
    return page.text_content(".flash")


def _count(app, model) -> int:
    with app.extensions["points.sessionmaker"]() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def _reconcile(app, now) -> None:
    from points import cycles

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        cycles.reconcile(s, now=now)


def _download(page, click: str, tmp_path, name: str) -> bytes:
    with page.expect_download() as info:
        page.click(click)
    path = tmp_path / name
    info.value.save_as(path)
    return path.read_bytes()


def test_a_village_set_up_and_run_from_the_browser(server, browser, tmp_path):
    from points.db import utcnow
    from points.models import Household, Resident

    app, base = server
    url = app.config["DATABASE_URL"]
    _points(
        url,
        "village",
        "create",
        "--code",
        CODE,
        "--name",
        "新村",
        "--town",
        "城关镇",
        "--county",
        "示范县",
    )
    _points(
        url,
        "user",
        "create",
        "--village",
        CODE,
        "--username",
        "shuji",
        "--name",
        "村书记",
        "--role",
        "admin",
        "--password",
        "shuji-pass-1",
    )
    v = f"{base}/v/{CODE}"

    admin = sign_in(browser, base, username="shuji", password="shuji-pass-1")
    assert admin.url.endswith(f"/v/{CODE}/")
    # 花名册, from the menu: a broken file shows every problem and writes nothing.
    admin.click("header nav summary:has-text('管理设置')")  # a phone: setting up is folded
    admin.click("header nav >> text=花名册")
    admin.set_input_files(
        "input[name=file]",
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": BROKEN.encode()}],
    )
    admin.click("#roster-check")
    problems = admin.text_content("#problem-list")
    for expected in ("第 2 行", "姓名", "手机号", "第 3 行", "户主", "期初积分"):
        assert expected in problems, expected
    assert "没有导入任何数据" in admin.text_content("#roster-problems")
    shot(admin, "01-roster-problems")
    assert _count(app, Household) == 0 and _count(app, Resident) == 0
    admin.goto(f"{v}/roster")
    admin.set_input_files(
        "input[name=file]",
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": ROSTER.encode()}],
    )
    admin.click("#roster-check")
    assert "共 4 人、3 户" in admin.text_content("#roster-ok")
    shot(admin, "02-roster-preview")
    assert _count(app, Household) == 0  # the preview writes nothing
    admin.click("#roster-confirm")
    assert "已导入 3 户、4 人" in _flash(admin)
    assert _count(app, Household) == 3

    # Two residents' PINs, and their slips printed.
    admin.goto(f"{v}/pins")
    for name in ("张大山", "李四"):
        admin.check(f"input[aria-label='{name}']")
    admin.click("#set-pins")
    # all_text_contents does not wait: wait for the answer page first (a loaded machine is slow).
    admin.wait_for_selector("#pins-done tbody tr")
    rows = admin.locator("#pins-done tbody tr").all_text_contents()
    pins = {
        re.search(r"^(\S+?)\d{3}", r).group(1): re.search(r"(\d{6})$", r.strip()).group(1)
        for r in rows
    }
    assert set(pins) == {"张大山", "李四"} and all(len(p) == 6 for p in pins.values())
    shot(admin, "03-pins")
    slips = _download(admin, "#print-slips", tmp_path, "slips.pdf")
    assert slips.startswith(b"%PDF")

    # Staff: a grid worker for 一组, a reviewer and the shop's clerk.
    for username, name, role, group in (
        ("grid1", "一组网格员", "recorder", "一组"),
        ("pingyi", "评议小组", "reviewer", None),
        ("shouyin", "超市收银员", "clerk", None),
    ):
        admin.goto(f"{v}/staff")
        admin.fill("input[name=username]", username)
        admin.fill("input[name=display_name]", name)
        admin.fill("input[name=password]", f"{username}-pass-1")
        admin.check(f"input[name=role][value={role}]")
        if group:
            admin.select_option("select[name=group_id]", label=group)
        admin.click("#create-staff")
        assert f"已新建账号 {username}" in _flash(admin)
    shot(admin, "04-staff")

    # The catalog: the default as Excel, one item edited, uploaded, diffed, dry-run, adopted.
    admin.goto(f"{v}/catalog")
    sheet = _download(admin, "#default-household", tmp_path, "default.xlsx")
    book = load_workbook(io.BytesIO(sheet))
    rules = book["积分标准"]
    header = [c.value for c in rules[1]]
    row = next(r for r in rules.iter_rows(min_row=2) if r[0].value == "XIAO-01")
    row[header.index("分值")].value = 20
    row[header.index("每月上限")].value = 40
    row[header.index("审核")].value = "必须"
    edited = io.BytesIO()
    book.save(edited)
    admin.set_input_files(
        "#scheme-household input[type=file]",
        files=[
            {
                "name": "household.xlsx",
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "buffer": edited.getvalue(),
            }
        ],
    )
    admin.click("#scheme-household button[type=submit]")
    assert "第 1 版草案" in _flash(admin)
    assert "XIAO-01" in admin.text_content("#diff-lines")
    admin.click("#dry-run")
    admin.wait_for_selector("#dry-run-result")
    admin.fill("input[name=expected]", "30")
    admin.fill("input[name=present]", "27")
    admin.fill("input[name=yes]", "26")
    admin.fill("input[name=no]", "0")
    admin.fill("input[name=abstain]", "1")
    shot(admin, "05-catalog-draft")
    admin.click("#adopt")
    assert "第 1 版已通过" in _flash(admin)
    assert "赞成 26 票" in admin.text_content("#scheme-household")

    # The 兑换门槛 and window; 公示 of 0 days so that this test need not wait a week.
    admin.goto(f"{v}/settings")
    admin.fill("#settings-household input[name=redemption_threshold]", "10")
    admin.fill("#settings-household input[name=window_days]", "100")
    admin.fill("#settings-household input[name=notice_days]", "0")
    admin.click("#save-household")
    assert "已保存" in _flash(admin)
    shot(admin, "06-settings")

    # Goods: a store, soap on the shelf, a donation received; then the household cards.
    admin.goto(f"{v}/shop/goods")
    store_form = admin.locator("form:has(input[name=action][value=store])")
    store_form.locator("input[name=name]").fill("村积分超市")
    store_form.locator("button").click()
    good_form = admin.locator("form:has(input[name=action][value=good])")
    good_form.locator("input[name=name]").fill("肥皂")
    good_form.locator("input[name=price]").fill("5")
    good_form.locator("input[name=unit]").fill("块")
    good_form.locator("button").click()
    assert "已添加商品“肥皂”" in _flash(admin)
    admin.goto(f"{v}/counter/stock")
    admin.select_option("select[name=good_id]", label="肥皂")
    admin.select_option("select[name=kind]", "donation")
    admin.fill("input[name=quantity]", "20")
    admin.fill("input[name=source]", "县供销社")
    admin.locator("form:has(select[name=good_id]) button[type=submit]").click()
    assert "现有 20" in _flash(admin)
    admin.goto(f"{v}/shop/cards")
    cards = _download(admin, "#print-all-cards", tmp_path, "cards.pdf")
    assert cards.startswith(b"%PDF")
    shot(admin, "07-cards")

    # The grid worker records the edited item for household 001; the reviewer approves.
    with app.extensions["points.sessionmaker"]() as s:
        home = s.execute(select(Household).where(Household.number == "001")).scalar_one()
        home_id = home.id
    grid = sign_in(browser, base, username="grid1", password="grid1-pass-1")
    assert grid.url.endswith(f"/v/{CODE}/record")
    assert "003" not in grid.content()  # another group's household is not offered
    grid.select_option("#rule", "XIAO-01")
    grid.check(f"input[name=household_id][value='{home_id}']")
    grid.click("#submit-record")
    assert "待审核" in _flash(grid)
    grid.context.close()
    reviewer = sign_in(browser, base, username="pingyi", password="pingyi-pass-1")
    reviewer.goto(f"{v}/review")
    reviewer.locator("button[value=approve]").first.click()
    assert "公示" in _flash(reviewer)
    reviewer.context.close()
    _reconcile(app, utcnow() + timedelta(seconds=5))  # the notice ended: posted

    # The resident signs in with the new PIN and shows the code; the counter reads it.
    resident = sign_in(browser, base, phone="13900000001", pin=pins["张大山"])
    assert resident.text_content("#available").strip() == "20"
    resident.goto(f"{v}/my/qr")
    resident.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    payload = _read_qr(resident.locator("#qr").screenshot())
    clerk = sign_in(browser, base, username="shouyin", password="shouyin-pass-1")
    assert clerk.url.endswith(f"/v/{CODE}/counter")
    clerk.fill("#wedge", payload)
    clerk.press("#wedge", "Enter")
    clerk.wait_for_selector("#head-name")
    qty = clerk.locator("input[name^=qty-]").first.get_attribute("name")
    clerk.fill(f"input[name={qty}]", "2")
    clerk.click("#reprice")
    assert clerk.text_content("#total").strip() == "10 分"
    clerk.click("#confirm")
    clerk.wait_for_selector("#receipt")
    assert clerk.text_content("#receipt-balance").strip() == "10 分"
    shot(clerk, "08-receipt")
    clerk.context.close()
    resident.goto(f"{v}/my/")
    assert resident.text_content("#available").strip() == "10"
    resident.context.close()

    # The quarter ends (the scheduler closes it); the admin downloads its statements.
    from points.periods import local_date, period_end_utc, period_key

    quarter = period_key("quarter", local_date(utcnow()))
    _reconcile(app, period_end_utc("quarter", quarter) + timedelta(minutes=5))
    admin.goto(f"{v}/periods")
    shot(admin, "09-periods")
    pdf = _download(admin, f"a[href*='period={quarter}'][href*='format=pdf']", tmp_path, "q.pdf")
    assert pdf.startswith(b"%PDF")
    xlsx = _download(admin, f"a[href*='period={quarter}'][href*='format=xlsx']", tmp_path, "q.xlsx")
    table = [r for r in load_workbook(io.BytesIO(xlsx)).active.iter_rows(values_only=True)]
    header = next(r for r in table if r and r[0] == "户号")
    line = dict(zip(header, next(r for r in table if r and r[0] == "001"), strict=False))
    assert (line["加分合计"], line["兑换"], line["到期清零"]) == (20, -10, -10)  # reset at close
    admin.context.close()
