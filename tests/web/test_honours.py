"""The year's 评星 and 表彰 run from pages in real Chromium at a phone's size (issue 17): the
branch secretary records a 民主评议 and drafts the stars and the 表彰; another admin approves
and publishes them; a resident signs in with their PIN and sees their household's star."""

from __future__ import annotations

import pytest

from tests.web.conftest import chromium_missing, screenshot_dir

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from tests.honours_world import YEAR, Year  # noqa: E402
from tests.web.test_walkthrough import sign_in  # noqa: E402


def shot(page, name: str) -> None:
    page.screenshot(path=str(screenshot_dir() / f"honours-{name}.png"), full_page=True)


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def test_the_admin_runs_the_years_stars_and_awards_and_a_resident_sees_the_star(server, browser):
    app, base = server
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        y = Year(s, "honours-web")
        y.score_the_year()
        forms = y.give_logins()
        code = y.village.code

    secretary = sign_in(browser, base, **forms["admin"])
    # The menu offers the new pages to an admin.
    secretary.goto(f"{base}/v/{code}/")
    assert secretary.locator("header nav a", has_text="评星表彰").count() == 1
    secretary.click("header nav summary:has-text('管理设置')")  # a phone: setting up is folded
    with secretary.expect_navigation():
        secretary.click("header nav a:has-text('民主评议')")
    assert f"{YEAR} 年度党员民主评议" in secretary.locator("h1").inner_text()
    row = secretary.locator("#reviews tr", has_text="张大山")
    row.locator("input[name=score]").fill("90")
    with secretary.expect_navigation():
        row.locator("button").click()
    assert "★★★★" in secretary.locator("#reviews tr", has_text="张大山").inner_text()

    secretary.goto(f"{base}/v/{code}/honours?year={YEAR}")
    for kind in ("household_stars", "awards"):
        secretary.select_option("#draft-kind", kind)
        _submit(secretary, "#draft-honours")
        assert "草稿" in secretary.locator("#list-title").inner_text()
    shot(secretary, "draft")
    # The drafter may not approve: the page says why, and the list stays a draft.
    _submit(secretary, "#list-approve")
    assert "不能审定" in secretary.locator(".flash").inner_text()

    director = sign_in(browser, base, **forms["admin2"])
    director.goto(f"{base}/v/{code}/honours?year={YEAR}")
    for label in ("星级文明户", "表彰"):
        director.click(f"#honour-lists a:has-text('{label}')")
        director.wait_for_load_state()
        _submit(director, "#list-approve")
        _submit(director, "#list-publish")
        assert "已发布" in director.locator("#list-title").inner_text()
    entries = director.locator("#honour-entries").inner_text()
    assert "最美家庭" in entries and "优秀党员" in entries
    shot(director, "published")

    resident = sign_in(browser, base, **forms["resident"])
    resident.goto(f"{base}/v/{code}/my/")
    honours = resident.locator("#honours").inner_text()
    assert "★★★" in honours and "三星级文明户" in honours
    assert resident.locator("header nav a", has_text="我家荣誉").count() == 1
    assert resident.locator("header nav a", has_text="评星表彰").count() == 0
    shot(resident, "resident")
    for page in (secretary, director, resident):
        page.context.close()
