"""Recording without signal, in a real browser (Debian's Chromium, a persistent profile): the
grid worker's page loads, the network is cut, three records (one with a photo) are kept on the
phone, the page is reloaded and the browser restarted with the same profile, the network comes
back, they are sent in order, and the server has exactly three claims; sending them all again
still leaves three (issue 20)."""

from __future__ import annotations

import io

import pytest

from tests.web.conftest import CHROMIUM, chromium_missing, screenshot_dir

_missing = chromium_missing()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

from PIL import Image  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.api.conftest import PASSWORD, build_world  # noqa: E402

PHONE = {"viewport": {"width": 412, "height": 860}, "device_scale_factor": 1, "is_mobile": True}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WAIT = 15_000  # ms: every wait below is bounded


@pytest.fixture(scope="module")
def world(server):
    app, _ = server
    w = build_world(app)
    from points.models import Group, Village
    from tests.factories import make_household

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village, group = s.get(Village, w.a.id), s.get(Group, w.group1.id)
        w.extra = [make_household(s, village, group, members=2).id for _ in range(2)]
    return w


def _phone(playwright, profile):
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=ARGS,
        locale="zh-CN",
        **PHONE,
    )
    context.set_default_timeout(WAIT)
    return context


def _states(page) -> list[str]:
    return page.eval_on_selector_all(
        "#queue-items li", "items => items.map(li => li.dataset.state)"
    )


def _wait_states(page, expected: list[str]) -> None:
    page.wait_for_function(
        "want => JSON.stringify([...document.querySelectorAll('#queue-items li')]"
        ".map(li => li.dataset.state)) === JSON.stringify(want)",
        arg=expected,
        timeout=WAIT,
    )


def _put(page, item: dict) -> None:
    """Put an item straight into the page's IndexedDB queue (as another visit would have)."""
    page.evaluate(
        """(item) => new Promise((resolve, reject) => {
            const open = indexedDB.open("points-offline", 1);
            open.onsuccess = () => {
                const t = open.result.transaction("queue", "readwrite");
                t.objectStore("queue").put(item);
                t.oncomplete = () => { open.result.close(); resolve(); };
                t.onerror = () => reject(t.error);
            };
        })""",
        item,
    )


def _claims(app, recorder_id):
    from points.models import Claim

    with app.extensions["points.sessionmaker"]() as s:
        return list(
            s.execute(select(Claim).where(Claim.recorded_by == recorder_id).order_by(Claim.id))
            .scalars()
            .all()
        )


def _big_photo(path) -> None:
    # A phone camera's size: the page scales it down before keeping it.
    Image.new("RGB", (3000, 2000), "orange").save(path, "JPEG", quality=90)


def _record(page, home_id: int, rule: str, *, points=None, photo=None, note="") -> None:
    """Fill the form and submit; wait until the page kept the record (one more in the queue)."""
    before = len(_states(page))
    page.select_option("#rule", rule)
    if points is not None:
        page.fill("input[name=proposed_points]", str(points))
    page.fill("textarea[name=description]", note)
    if photo is not None:
        page.set_input_files("input[name=photos]", str(photo))
    page.check(f"input[name=household_id][value='{home_id}']")
    page.click("#submit-record")
    page.wait_for_function(
        "n => document.querySelectorAll('#queue-items li').length === n", arg=before + 1
    )
    assert "已保存在本机" in page.inner_text(".flash.ok")


def test_three_records_made_offline_survive_a_restart_and_are_recorded_once(
    server, world, tmp_path
):
    from playwright.sync_api import sync_playwright

    app, base = server
    w, code = world, world.a.code
    recorder_id = w.users["recorder"].id
    profile, photo = tmp_path / "profile", tmp_path / "camera.jpg"
    _big_photo(photo)
    record_url = f"{base}/v/{code}/record"

    with sync_playwright() as p:
        # Online: sign in; the page installs its service worker and keeps a copy of itself.
        phone = _phone(p, profile)
        page = phone.pages[0] if phone.pages else phone.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "u-recorder")
        page.fill("input[name=password]", PASSWORD)
        page.locator("input[name=password]").press("Enter")
        page.wait_for_url(record_url + "*")
        page.wait_for_function("window.pointsOffline && window.pointsOffline.ready")

        # The signal drops: the page still opens (from the kept copy), and takes three records.
        phone.set_offline(True)
        assert page.reload().from_service_worker
        page.wait_for_selector("#record-form")
        assert page.evaluate("navigator.onLine") is False
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        _record(page, w.home1.id, "MEI-01", note="院子干净")
        _record(page, w.extra[0], "SHAN-01", points=10, photo=photo, note="扶老人过河")
        _record(page, w.extra[1], "MEI-01")
        _wait_states(page, ["waiting"] * 3)
        assert "没有网络" in page.inner_text("#net-state")
        page.screenshot(path=str(screenshot_dir() / "offline-01-queued.png"), full_page=True)
        assert _claims(app, recorder_id) == []

        # A batch cannot be kept offline: it says so, and nothing is queued.
        page.select_option("#rule", "MEI-01")
        page.check(f"input[name=household_id][value='{w.extra[0]}']")
        page.check(f"input[name=household_id][value='{w.extra[1]}']")
        page.click("#submit-record")
        page.wait_for_selector(".flash.error")
        assert "每次只能登记一户" in page.inner_text(".flash.error")
        assert len(_states(page)) == 3

        # The page is reloaded, then the phone restarts: the queue is still there.
        page.reload()
        page.wait_for_selector("#queue-items li")
        _wait_states(page, ["waiting"] * 3)
        phone.close()

        phone = _phone(p, profile)
        phone.set_offline(True)
        page = phone.pages[0] if phone.pages else phone.new_page()
        assert page.goto(record_url).from_service_worker
        assert page.evaluate("navigator.onLine") is False
        _wait_states(page, ["waiting"] * 3)
        assert _claims(app, recorder_id) == []

        # The signal is back: the three are sent, in the order they were made.
        phone.set_offline(False)
        _wait_states(page, ["sent"] * 3)
        page.screenshot(path=str(screenshot_dir() / "offline-02-sent.png"), full_page=True)
        made = _claims(app, recorder_id)
        assert [c.household_id for c in made] == [w.home1.id, w.extra[0], w.extra[1]]
        assert [c.description for c in made] == ["院子干净", "扶老人过河", ""]
        assert made[1].status == "pending_review" and made[1].points == 10
        listed = page.inner_text("#queue-items")
        assert f"事项 #{made[0].id}" in listed and "待审核" in listed

        # The photo reached the server, scaled down on the phone.
        from api.claims.evidence import photo_path

        with app.extensions["points.sessionmaker"]() as s:
            from points.models import Claim

            evidence = s.get(Claim, made[1].id).evidence
            assert len(evidence) == 1
            with app.app_context():
                stored = Image.open(
                    io.BytesIO(photo_path(w.a.id, evidence[0].stored_name).read_bytes())
                )
            assert max(stored.size) <= 1600 and stored.size[0] > stored.size[1]

        # A forced second send of every item (a lost answer, another tab): still three claims.
        page.evaluate(
            """() => new Promise((resolve, reject) => {
                const open = indexedDB.open("points-offline", 1);
                open.onsuccess = () => {
                    const t = open.result.transaction("queue", "readwrite");
                    const store = t.objectStore("queue");
                    store.getAll().onsuccess = (e) => e.target.result.forEach(item => {
                        item.state = "waiting"; store.put(item);
                    });
                    t.oncomplete = () => { open.result.close(); resolve(); };
                    t.onerror = () => reject(t.error);
                };
            })"""
        )
        page.evaluate("Promise.all([window.pointsOffline.sync(), window.pointsOffline.sync()])")
        _wait_states(page, ["sent"] * 3)
        again = _claims(app, recorder_id)
        assert [c.id for c in again] == [c.id for c in made]
        assert f"事项 #{made[0].id}" in page.inner_text("#queue-items")

        # A record made against an item that has changed since is refused, with the reason shown,
        # and nothing is recorded; the recorder can remove it from the list.
        _put(
            page,
            {
                "key": "rec-stale",
                "village": code,
                "user": str(recorder_id),
                "user_name": "recorder",
                "seq": 9e15,
                "label": "旧标准的登记",
                "data": {
                    "scheme": "household",
                    "household_id": w.home1.id,
                    "rule_code": "MEI-01",
                    "occurred_on": made[0].occurred_on.isoformat(),
                    "expected_rule_id": 2**31 - 1,
                    "expected_group_id": w.group1.id,
                },
                "photos": [],
                "state": "waiting",
                "reason": "",
            },
        )
        page.evaluate("window.pointsOffline.sync()")
        _wait_states(page, ["sent", "sent", "sent", "refused"])
        refused = page.locator("#queue-items li[data-state=refused]")
        assert "积分标准已更新" in refused.inner_text()
        assert len(_claims(app, recorder_id)) == 3
        refused.locator("button").click()
        _wait_states(page, ["sent", "sent", "sent"])

        # On a shared phone, a record another recorder left waits for them: this session never
        # sends it under its own name.
        _put(
            page,
            {
                "key": "rec-other",
                "village": code,
                "user": "999999",
                "user_name": "李四",
                "seq": 0,
                "label": "别人的登记",
                "data": {"household_id": w.home1.id, "rule_code": "MEI-01"},
                "photos": [],
                "state": "waiting",
                "reason": "",
            },
        )
        page.evaluate("window.pointsOffline.sync()")
        _wait_states(page, ["waiting", "sent", "sent", "sent"])
        assert "李四 登录后发送" in page.inner_text("#queue-items")
        assert len(_claims(app, recorder_id)) == 3
        phone.close()


def test_a_send_that_fails_as_the_signal_returns_is_tried_again_on_its_own(server, world, tmp_path):
    """The signal comes back weak and the first send fails: the phone tries again by itself
    within seconds, not at the next 30 s check, and the record is made once."""
    from playwright.sync_api import sync_playwright

    app, base = server
    w, code = world, world.a.code
    user_id = w.users["admin2"].id
    queued = f"{base}/v/{code}/record/queued"
    failures = ["lost"]  # then the real server

    def flaky(route):
        if failures:
            failures.pop()
            return route.abort("internetdisconnected")
        return route.continue_()

    with sync_playwright() as p:
        phone = _phone(p, tmp_path / "profile")
        page = phone.pages[0] if phone.pages else phone.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "u-admin2")
        page.fill("input[name=password]", PASSWORD)
        page.locator("input[name=password]").press("Enter")
        page.wait_for_url(f"{base}/v/{code}/**")
        page.goto(f"{base}/v/{code}/record")
        page.wait_for_function("window.pointsOffline && window.pointsOffline.ready")

        page.route(queued, flaky)
        _put(
            page,
            {
                "key": "rec-weak-signal",
                "village": code,
                "user": str(user_id),
                "user_name": "admin2",
                "seq": 1,
                "label": "信号弱时的登记",
                "data": {
                    "scheme": "household",
                    "household_id": w.extra[1],
                    "rule_code": "MEI-01",
                    "occurred_on": page.eval_on_selector("input[name=occurred_on]", "e => e.max"),
                },
                "photos": [],
                "state": "waiting",
                "reason": "",
            },
        )
        page.evaluate("window.pointsOffline.sync()")
        _wait_states(page, ["waiting"])
        assert failures == [] and _claims(app, user_id) == []

        # Nothing nudges the page from here: its own retry (after 5 s) sends it.
        _wait_states(page, ["sent"])
        made = _claims(app, user_id)
        assert [c.household_id for c in made] == [w.extra[1]]
        phone.close()
