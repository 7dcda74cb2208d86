"""The pages as a person uses them (form posts through the Flask test client; the real-browser
walk-through lives in tests/web)."""

import re

from sqlalchemy import select

from points.models import Claim
from tests.api.conftest import PASSWORD


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(client, **creds):
    token = _token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, **creds})


def test_staff_sign_in_lands_on_their_page(app, world):
    client = app.test_client()
    response = _login(client, username="u-recorder", password=PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/v/{world.a.code}/record"
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "登记积分" in page and world.home1.number in page
    assert world.home2.number not in page  # another group's household is not offered


def test_wrong_password_says_so_in_chinese(app, world):
    response = _login(app.test_client(), username="u-admin", password="nope")
    assert response.status_code == 401 and "账号或密码错误" in response.get_data(as_text=True)


def test_forms_without_the_csrf_token_are_refused(app, world):
    client = app.test_client()
    _login(client, username="u-recorder", password=PASSWORD)
    response = client.post(
        f"/v/{world.a.code}/record", data={"household_id": world.home1.id, "rule_code": "MEI-01"}
    )
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)


def test_record_review_notice_and_resident_view(app, world):
    recorder = app.test_client()
    _login(recorder, username="u-recorder", password=PASSWORD)
    page = recorder.get(f"/v/{world.a.code}/record").get_data(as_text=True)
    response = recorder.post(
        f"/v/{world.a.code}/record",
        data={
            "csrf_token": _token(page),
            "scheme": "household",
            "rule_code": "FZ-51",
            "occurred_on": "2026-11-20",
            "quantity": "1",
            "description": "聚众赌博",
            "household_id": str(world.home1.id),
        },
        follow_redirects=True,
    )
    assert "已登记 -10 分，待审核" in response.get_data(as_text=True)

    reviewer = app.test_client()
    _login(reviewer, username="u-reviewer", password=PASSWORD)
    page = reviewer.get(f"/v/{world.a.code}/review").get_data(as_text=True)
    assert "赌博" in page
    with app.extensions["points.sessionmaker"]() as s:
        claim_id = s.scalars(select(Claim.id)).one()
    done = reviewer.post(
        f"/v/{world.a.code}/review",
        data={"csrf_token": _token(page), "claim_id": claim_id, "decision": "approve", "note": ""},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "进入公示" in done

    notices = app.test_client().get(f"/public/{world.a.code}/notices").get_data(as_text=True)
    assert "赌博" in notices and "-10" in notices

    resident = app.test_client()
    assert _login(resident, phone="13800001111", pin="123456").status_code == 302
    home = resident.get(f"/v/{world.a.code}/my/").get_data(as_text=True)
    assert 'id="available">30<' in home and "公示中" in home


def test_pages_are_light_and_have_large_type(app, world):
    client = app.test_client()
    _login(client, username="u-admin", password=PASSWORD)
    for path in (
        f"/v/{world.a.code}/",
        f"/v/{world.a.code}/record",
        f"/public/{world.a.code}/notices",
        f"/public/{world.a.code}/rules",
        "/login",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert len(response.data) < 150_000, path
        assert "cdn" not in response.get_data(as_text=True).lower()
    client.get("/big-type?next=/login")
    assert 'class="big"' in client.get("/login").get_data(as_text=True)


def test_supervisor_sees_town_totals_only(app, world):
    client = app.test_client()
    response = _login(client, username="u-supervisor", password=PASSWORD)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert world.a.name in page and "不含任何个人信息" in page
    assert world.home1.number not in page


def test_admin_drafts_approves_and_publishes_a_board_in_the_browser(app, world):
    from points import ledger

    client = app.test_client()
    _login(client, username="u-admin", password=PASSWORD)
    url = f"/v/{world.a.code}/boards"
    page = client.get(url).get_data(as_text=True)
    month = re.search(r'name="month" value="([^"]+)"', page).group(1)
    # Maker ≠ checker: a second admin approves what the first drafted.
    checker = app.test_client()
    _login(checker, username="u-admin2", password=PASSWORD)

    def step(who, action):
        page = who.get(url).get_data(as_text=True)
        form = {"csrf_token": _token(page), "action": action, "month": month}
        board_id = re.search(r'name="board_id" value="(\d+)"', page)
        if board_id:
            form["board_id"] = board_id.group(1)
        return who.post(url, data=form, follow_redirects=True).get_data(as_text=True)

    assert "已更新" in step(client, "draft")
    assert "起草本榜的人不能审定本榜" in step(client, "approve")
    assert "已更新" in step(checker, "approve")
    page = step(client, "publish")
    assert "已更新" in page, page
    with app.extensions["points.sessionmaker"]() as s:
        seq, head = ledger.chain_head(s, world.a.id)
    assert f"{seq}:{head}" in page
    public = app.test_client().get(f"/public/{world.a.code}/board/{month}")
    assert public.status_code == 200 and str(seq) in public.get_data(as_text=True)
