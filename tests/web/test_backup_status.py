"""The admin home in a real browser (phone-sized): the last backup's time and place, and the
Chinese warning when the backup folder (a USB stick) is missing or the last backup is old."""

from __future__ import annotations

import shutil
import threading

import pytest

from tests.web.conftest import chromium_missing, screenshot_dir

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from api.backups.scheduled import backup_now  # noqa: E402
from points.db import utcnow  # noqa: E402
from tests.api.conftest import PASSWORD, build_world, make_app  # noqa: E402

PHONE = {"viewport": {"width": 360, "height": 800}, "device_scale_factor": 1, "is_mobile": True}


@pytest.fixture(scope="module")
def usb_server(databases, tmp_path_factory):
    """The real app whose backup folder is a 'USB stick' folder under a temporary path."""
    from werkzeug.serving import make_server

    stick = tmp_path_factory.mktemp("usb") / "points-backups"
    stick.mkdir()
    url = databases.fresh()
    app = make_app(
        url,
        SIGNIN_RATE_LIMIT="10000 per minute",
        BACKUP_DIR=str(stick),
        EVIDENCE_DIR=str(tmp_path_factory.mktemp("evidence")),
    )
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{httpd.server_port}", stick
    httpd.shutdown()
    thread.join(5)
    app.extensions["points.engine"].dispose()
    databases.drop(url)


def test_admin_home_shows_the_backup_and_warns_when_the_stick_is_missing(usb_server, browser):
    app, base, stick = usb_server
    world = build_world(app)
    context = browser.new_context(locale="zh-CN", **PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "u-admin")
    page.fill("input[name=password]", PASSWORD)
    page.locator("input[name=password]").press("Enter")
    page.wait_for_load_state()
    home = f"{base}/v/{world.a.code}/"

    # Never backed up: the admin is told.
    page.goto(home)
    box = page.locator("#backup-status")
    assert "还没有备份过" in box.inner_text()
    assert "超过两天没有备份" in page.locator("#backup-warning").inner_text()

    # A backup is taken: its time and file are shown, and no warning.
    taken = backup_now(app, now=utcnow(), reason="manual")
    page.goto(home)
    assert page.locator("#backup-place").inner_text() == str(taken.path)
    assert page.locator("#backup-time").inner_text().startswith(str(utcnow().year))
    assert page.locator("#backup-warning").count() == 0
    page.screenshot(path=str(screenshot_dir() / "backup-ok.png"), full_page=True)

    # The USB stick is pulled out: a warning in Chinese, in the admin's view.
    shutil.rmtree(stick)
    page.goto(home)
    warning = page.locator("#backup-warning")
    assert warning.is_visible()
    assert "找不到备份位置" in warning.inner_text() and "U 盘" in warning.inner_text()
    # The page still fits a 360 px phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(screenshot_dir() / "backup-missing.png"), full_page=True)
    context.close()
