"""Daily work without friction (issue 15), through the Flask test client with a real database
and real files: evidence seen through the page session, evidence through the API's staff
endpoints, Chinese error pages, plain-Chinese statuses and periods."""

from __future__ import annotations

import io
import json
import re

from PIL import Image
from sqlalchemy import select

from points.db import utcnow
from points.models import Claim
from tests.api.conftest import PASSWORD, auth, jpeg


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(client, **creds):
    token = _token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, **creds})


def _today():
    return utcnow().date().isoformat()


def _record_with_photo(client, world, rule="SHAN-01", **extra):
    body = {
        "household_id": world.home1.id,
        "rule_code": rule,
        "proposed_points": 10,
        "description": "救起落水儿童",
        "occurred_on": _today(),
        **extra,
    }
    return client.post(
        f"/api/v1/villages/{world.a.code}/claims",
        headers=auth(world.tokens["recorder"]),
        data={"data": json.dumps(body), "photos": (io.BytesIO(jpeg()), "a.jpg")},
        content_type="multipart/form-data",
    )


# --- 2. evidence through the API's staff endpoints ---------------------------------------------


def test_staff_claim_with_evidence_through_the_api(app, client, world):
    a = f"/api/v1/villages/{world.a.code}"
    plain = client.post(
        f"{a}/claims",
        headers=auth(world.tokens["recorder"]),
        json={
            "household_id": world.home1.id,
            "rule_code": "SHAN-01",
            "proposed_points": 10,
            "description": "救起落水儿童",
            "occurred_on": _today(),
        },
    )
    assert plain.status_code == 422 and plain.json["error"] == "evidence_required"
    r = _record_with_photo(client, world)
    assert r.status_code == 201, r.json
    assert r.json["status"] == "pending_review" and len(r.json["evidence"]) == 1
    photo = f"{a}/claims/{r.json['id']}/evidence/{r.json['evidence'][0]['id']}"
    assert client.get(photo, headers=auth(world.tokens["reviewer"])).mimetype == "image/jpeg"
    # The same checks as declarations: a non-image is refused and nothing is written.
    bad = client.post(
        f"{a}/claims",
        headers=auth(world.tokens["recorder"]),
        data={
            "data": json.dumps(
                {
                    "household_id": world.home1.id,
                    "rule_code": "SHAN-01",
                    "proposed_points": 10,
                    "description": "x",
                    "occurred_on": _today(),
                }
            ),
            "photos": (io.BytesIO(b"<?php echo 1; ?>"), "a.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "JPG 或 PNG" in bad.json["message"]
    broken = client.post(
        f"{a}/claims",
        headers=auth(world.tokens["recorder"]),
        data={"data": "{not json", "photos": (io.BytesIO(jpeg()), "a.jpg")},
        content_type="multipart/form-data",
    )
    assert broken.status_code == 422 and broken.json["error"] == "invalid_input"
    with app.extensions["points.sessionmaker"]() as s:
        assert len(s.scalars(select(Claim)).all()) == 1


def test_batch_photos_attach_to_every_claim(app, client, world):
    from points.models import Group, Village
    from tests.factories import make_household

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        other = make_household(s, s.get(Village, world.a.id), s.get(Group, world.group1.id)).id
    a = f"/api/v1/villages/{world.a.code}"
    body = {
        "title": "见义勇为表彰会",
        "rule_code": "SHAN-01",
        "occurred_on": _today(),
        "proposed_points": 10,
        "subjects": [{"household_id": world.home1.id}, {"household_id": other}],
    }
    refused = client.post(f"{a}/claims/batch", headers=auth(world.tokens["admin"]), json=body)
    assert refused.status_code == 422 and refused.json["error"] == "evidence_required"
    r = client.post(
        f"{a}/claims/batch",
        headers=auth(world.tokens["admin"]),
        data={
            "data": json.dumps(body),
            "photos": [(io.BytesIO(jpeg()), "sign-in.jpg"), (io.BytesIO(jpeg("red")), "b.jpg")],
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json
    assert len(r.json["claims"]) == 2
    assert all(len(c["evidence"]) == 2 for c in r.json["claims"])
    for c in r.json["claims"]:
        for e in c["evidence"]:
            got = client.get(
                f"{a}/claims/{c['id']}/evidence/{e['id']}", headers=auth(world.tokens["reviewer"])
            )
            assert got.status_code == 200 and got.mimetype == "image/jpeg"


# --- 1. reviewers see evidence through the page session ----------------------------------------


def test_reviewer_sees_photos_inline_through_the_page_session(app, client, world):
    claim = _record_with_photo(client, world).json
    reviewer = app.test_client()
    _login(reviewer, username="u-reviewer", password=PASSWORD)
    page = reviewer.get(f"/v/{world.a.code}/review").get_data(as_text=True)
    card = page[page.index(f'id="claim-{claim["id"]}"') :]
    src = re.search(r'<img src="([^"]+)"', card).group(1)
    assert "/api/" not in src
    photo = reviewer.get(src)
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(photo.data)).size == (40, 30)
    # Signed out, or another village's admin: no photo.
    assert app.test_client().get(src).status_code == 302
    other = app.test_client()
    _login(other, username="u-admin_b", password=PASSWORD)
    assert other.get(src).status_code == 403


# --- 6. Chinese error pages, statuses and periods ----------------------------------------------


def test_error_pages_are_chinese_with_a_way_back(app, world):
    client = app.test_client()
    missing = client.get("/no/such/page")
    text = missing.get_data(as_text=True)
    assert missing.status_code == 404 and "找不到这个页面" in text
    assert 'name="viewport"' in text and "回到首页" in text and "Not Found" not in text
    board = client.get(f"/public/{world.a.code}/board/2020-01")
    assert board.status_code == 404 and "找不到" in board.get_data(as_text=True)
    wrong = client.delete("/login")
    assert wrong.status_code == 405 and "Method Not Allowed" not in wrong.get_data(as_text=True)
    assert "不能这样打开" in wrong.get_data(as_text=True)
    # The API keeps its JSON envelope.
    api = client.get("/api/v1/no-such")
    assert api.status_code == 404 and api.json["error"] == "not_found"


def test_too_many_sign_ins_say_when_to_come_back(app, world):
    from tests.api.conftest import make_app

    limited = make_app(app.config["DATABASE_URL"], SIGNIN_RATE_LIMIT="2 per 5 minutes")
    client = limited.test_client()
    for _ in range(2):
        _login(client, phone="13800001111", pin="000000")
    page = _login(client, phone="13800001111", pin="000000")
    text = page.get_data(as_text=True)
    assert page.status_code == 429, text
    assert "输错次数太多，请 5 分钟后再试；忘记 PIN 请到村委会重置" in text
    assert "Too Many Requests" not in text and 'name="viewport"' in text
    assert page.headers.get("Retry-After")
    limited.extensions["points.engine"].dispose()


def test_periods_in_plain_chinese():
    from points.periods import period_label

    assert period_label("2026-Q4") == "2026年第四季度"
    assert period_label("2026-11") == "2026年11月"
    assert period_label("2026") == "2026年"


# --- 3, 4, 5. the record page and the declare form ----------------------------------------------


def _recorder(app):
    client = app.test_client()
    _login(client, username="u-recorder", password=PASSWORD)
    return client


def _options(page: str) -> list[str]:
    return re.findall(r"<option value=\"[^\"]*\"[^>]*>([^<]*)</option>", page)


def test_record_page_groups_items_points_first_without_codes(app, world):
    client = _recorder(app)
    page = client.get(f"/v/{world.a.code}/record").get_data(as_text=True)
    assert '<form method="get"' not in page  # searching never reloads the page
    assert 'id="search"' in page and "提交登记（已选 <span" in page and "sticky-submit" in page
    groups = re.findall(r'<optgroup label="([^"]+)"', page)
    assert groups.index("加分 · 积美") < groups.index("扣分 · 法治")
    labels = [o for o in _options(page) if o.startswith("(")]
    assert "(+5) 庭院整洁" in labels
    assert "(+5–30) 见义勇为 · 需附照片，需审核" in labels
    assert "(-10) 赌博 · 需审核" in labels
    assert not any(code in page for code in (">MEI-01", "MEI-01 ", "SHAN-01 "))
    assert "最近使用" not in page
    token = _token(page)
    done = client.post(
        f"/v/{world.a.code}/record",
        data={
            "csrf_token": token,
            "rule_code": "ZZ-09",
            "occurred_on": _today(),
            "household_id": str(world.home1.id),
        },
    )
    assert done.status_code == 302
    again = client.get(f"/v/{world.a.code}/record").get_data(as_text=True)
    first = re.search(r'<optgroup label="([^"]+)">\s*<option value="([^"]+)"', again)
    assert first.groups() == ("最近使用", "ZZ-09")


def test_a_refusal_keeps_everything_on_the_record_page(app, world):
    client = _recorder(app)
    token = _token(client.get(f"/v/{world.a.code}/record").get_data(as_text=True))
    refused = client.post(
        f"/v/{world.a.code}/record",
        data={
            "csrf_token": token,
            "rule_code": "SHAN-01",
            "occurred_on": _today(),
            "proposed_points": "12",
            "description": "救起落水儿童",
            "household_id": str(world.home1.id),
            f"member_{world.home1.id}": str(world.members[world.home1.id][0]),
        },
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "本项须附证明材料" in page
    assert re.search(r'<option value="SHAN-01"[^>]* selected>', page)
    assert f'value="{world.home1.id}" checked' in page
    assert "救起落水儿童" in page and 'value="12"' in page
    assert re.search(rf'<option value="{world.members[world.home1.id][0]}" selected>', page)
    assert '已选 <span id="chosen-count">1</span> 户' in page


def test_the_member_who_did_it_is_named_in_history(app, world):
    from datetime import timedelta

    from points import claims as claim_domain

    client = _recorder(app)
    member = world.members[world.home1.id][2]
    token = _token(client.get(f"/v/{world.a.code}/record").get_data(as_text=True))
    client.post(
        f"/v/{world.a.code}/record",
        data={
            "csrf_token": token,
            "rule_code": "MEI-01",
            "occurred_on": _today(),
            "household_id": str(world.home1.id),
            f"member_{world.home1.id}": str(member),
        },
    )
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        claim = s.scalars(select(Claim).order_by(Claim.id.desc())).first()
        assert claim.resident_id == member
        claim.notice_until = utcnow() - timedelta(minutes=1)
        s.flush()
        claim_domain.post_claim(s, claim_id=claim.id, now=utcnow())
        from points.models import Resident

        name = s.get(Resident, member).name
    resident = app.test_client()
    _login(resident, phone="13800001111", pin="123456")
    page = resident.get(f"/v/{world.a.code}/my/").get_data(as_text=True)
    history = page[page.index('id="history"') :]
    assert f"庭院整洁（{name}）" in history
    statement = client.get(
        f"/api/v1/villages/{world.a.code}/households/{world.home1.id}/statement",
        headers=auth(world.tokens["admin"]),
    )
    assert statement.status_code == 200
    assert f"庭院整洁（{name}）" in statement.get_data(as_text=True)


def test_declare_form_preselects_nothing_and_names_the_member(app, world):
    resident = app.test_client()
    _login(resident, phone="13800001111", pin="123456")
    page = resident.get(f"/v/{world.a.code}/my/declare").get_data(as_text=True)
    select_html = page[page.index('name="rule_code"') : page.index("</select>")]
    assert " selected" not in select_html
    assert re.search(r'<option value="">请选择项目</option>', select_html)
    assert "(+5–30) 见义勇为 · 需附照片" in select_html and "SHAN-01 " not in select_html
    assert 'name="resident_id"' in page and "最近使用" not in page
    sent = resident.post(
        f"/v/{world.a.code}/my/declare",
        data={
            "csrf_token": _token(page),
            "rule_code": "SHAN-01",
            "proposed_points": "8",
            "occurred_on": _today(),
            "description": "帮邻居抢收",
            "resident_id": str(world.members[world.home1.id][0]),
            "photos": (io.BytesIO(jpeg()), "a.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert sent.status_code == 302
    again = resident.get(f"/v/{world.a.code}/my/declare").get_data(as_text=True)
    first = re.search(r'<optgroup label="([^"]+)">\s*<option value="([^"]+)"', again)
    assert first.groups() == ("最近使用", "SHAN-01")
    assert " selected" not in again[again.index('name="rule_code"') : again.index("</select>")]
    with app.extensions["points.sessionmaker"]() as s:
        claim = s.scalars(select(Claim).order_by(Claim.id.desc())).first()
        assert claim.resident_id == world.members[world.home1.id][0]


# --- 7. resident pages ---------------------------------------------------------------------------


def _batch_in_notice(app, world, homes, title="村民大会"):
    from points import claims as claim_domain
    from points.ledger.statements import get_scheme
    from points.models import Village
    from points.org.access import load_actor

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        batch, items = claim_domain.record_batch(
            s,
            village=village,
            scheme=get_scheme(s, village=village, code="household"),
            actor=load_actor(s, world.users["admin"].id),
            title=title,
            rule_code="ZZ-09",
            occurred_on=utcnow().date(),
            subjects=[(h, None) for h in homes],
            now=utcnow(),
        )
        return [c.id for c in items]


def test_notices_show_a_batch_as_one_row_with_one_objection_button(app, world):
    ids = _batch_in_notice(app, world, [world.home1.id, world.home2.id])
    resident = app.test_client()
    _login(resident, phone="13800001111", pin="123456")
    page = resident.get(f"/v/{world.a.code}/my/notices").get_data(as_text=True)
    assert page.count('<li class="notice-row') == 1
    assert "村民大会" in page and "2 户" in page
    assert page.count("<summary>我有异议</summary>") == 1
    assert page.count('name="reason"') == 1
    token = _token(page)
    done = resident.post(
        f"/v/{world.a.code}/my/notices",
        data={"csrf_token": token, "claim_id": str(ids[1]), "reason": "他那天没来开会"},
    )
    assert done.status_code == 302
    with app.extensions["points.sessionmaker"]() as s:
        assert len(s.get(Claim, ids[1]).objections) == 1
    public = app.test_client().get(f"/public/{world.a.code}/notices").get_data(as_text=True)
    assert public.count("<tr class=") == 1 and "村民大会" in public


def test_empty_public_notice_board_has_no_empty_table(app, world):
    page = app.test_client().get(f"/public/{world.a.code}/notices").get_data(as_text=True)
    assert "目前没有正在公示的事项" in page and "<table" not in page
    assert f"/public/{world.a.code}/boards" in page  # the 红黑榜 is one tap away


def test_resident_home_threshold_deed_date_and_named_pending(app, world):
    from datetime import timedelta

    from points import claims as claim_domain
    from points.ledger.statements import get_scheme
    from points.models import Scheme, Village
    from points.org.access import load_actor

    deed_day = utcnow().date() - timedelta(days=3)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        scheme = get_scheme(s, village=village, code="household")
        s.get(Scheme, scheme.id).redemption_threshold = 60
        s.get(Scheme, scheme.id).redeemable = True
        admin = load_actor(s, world.users["admin"].id)
        posted = claim_domain.record(
            s,
            village=village,
            scheme=scheme,
            actor=admin,
            now=utcnow(),
            item=claim_domain.ClaimInput(
                household_id=world.home1.id, rule_code="MEI-01", occurred_on=deed_day
            ),
        )
        posted.notice_until = utcnow() - timedelta(minutes=1)
        s.flush()
        claim_domain.post_claim(s, claim_id=posted.id, now=utcnow())
        claim_domain.record(
            s,
            village=village,
            scheme=scheme,
            actor=admin,
            now=utcnow(),
            item=claim_domain.ClaimInput(
                household_id=world.home1.id,
                rule_code="FZ-59",
                occurred_on=utcnow().date(),
                description="乱倒垃圾",
            ),
        )
    resident = app.test_client()
    _login(resident, phone="13800001111", pin="123456")
    page = resident.get(f"/v/{world.a.code}/my/").get_data(as_text=True)
    score = int(re.search(r'id="score">(-?\d+)<', page).group(1))
    assert score < 60
    assert f"本期还差 {60 - score} 分才能兑换" in page and "可兑换积分" not in page
    history = page[page.index('id="history"') :]
    row = re.search(r"<tr><td>([^<]+)</td>\s*<td>庭院整洁", history)
    assert row and row.group(1).strip() == deed_day.isoformat()
    pending = page[page.index('id="pending"') : page.index("</ul>", page.index('id="pending"'))]
    assert "违反村规民约" in pending and "待审核" in pending


# --- 8. the counter ------------------------------------------------------------------------------


def _clerk_scan(app, w, text, **extra):
    client = app.test_client()
    _login(client, username="u-clerk", password=PASSWORD)
    page = client.get(f"/v/{w.a.code}/counter").get_data(as_text=True)
    response = client.post(
        f"/v/{w.a.code}/counter/scan",
        data={"csrf_token": _token(page), "code": text, **extra},
        follow_redirects=True,
    )
    return client, response.get_data(as_text=True)


def test_counter_never_shows_a_negative_balance_and_totals_live(app, world):
    from tests.api.shop_world import build_shop, phone_code

    build_shop(app, world)
    oil = world.shop.goods["食用油"]
    code = phone_code(app, world.a.id, world.home1.id)
    _, page = _clerk_scan(app, world, code, **{f"qty-{oil}": "7"})  # 595 > 530
    assert "兑换后余额" not in page.replace('id="live-after">积分不足', "")
    assert not re.search(r"-\d+ 分", page.split('id="basket"')[1])
    assert "还差 65 分" in page
    assert 'data-price="85"' in page and 'id="live-total"' in page


def test_card_checkout_messages_do_not_ask_to_refresh_a_card(app, world):
    from points.models import HouseholdCard
    from tests.api.shop_world import build_shop, live_card

    build_shop(app, world)
    card_id = live_card(app, world, world.home2)
    with app.extensions["points.sessionmaker"]() as s:
        serial = s.get(HouseholdCard, card_id).serial
    soap = world.shop.goods["肥皂"]
    from api.shop import qr

    client, page = _clerk_scan(app, world, qr.card_payload(serial), **{f"qty-{soap}": "1"})
    checkout = re.search(r'name="checkout" value="([^"]+)"', page).group(1)
    form = {"csrf_token": _token(page), "checkout": checkout, "priced": f"{soap}:1"}
    form[f"qty-{soap}"] = "1"
    client.post(f"/v/{world.a.code}/counter/redeem", data=form)
    again = client.post(f"/v/{world.a.code}/counter/redeem", data=form, follow_redirects=True)
    text = again.get_data(as_text=True)
    assert "请重新扫描户卡" in text and "刷新" not in text


def test_low_stock_is_a_reminder_apart_from_scan_errors(app, world):
    from tests.api.shop_world import build_shop

    build_shop(app, world, stock=3)
    _, page = _clerk_scan(app, world, "not-a-code")
    assert 'id="low-stock"' in page and "库存提醒" in page
    errors = re.findall(r'<p class="flash error"[^>]*>([^<]*)</p>', page)
    assert errors and all("库存" not in e for e in errors)
    assert page.index('id="low-stock"') > page.index('id="scan-form"')


# --- 9, 10, 12. public pages, the staff board page, the town page --------------------------------


def test_public_pages_link_the_board_and_rules_are_grouped(app, world):
    client = app.test_client()
    home = client.get("/").get_data(as_text=True)
    assert f"/public/{world.a.code}/boards" in home
    for path in ("notices", "rules", "boards"):
        page = client.get(f"/public/{world.a.code}/{path}").get_data(as_text=True)
        header = page[page.index("<header") : page.index("</header>")]
        assert f"/public/{world.a.code}/boards" in header and "红黑榜" in header, path
    rules = client.get(f"/public/{world.a.code}/rules").get_data(as_text=True)
    summaries = re.findall(r"<summary>([^<]+)</summary>", rules)
    assert "加分 · 德治 · 积美（1 项）" in summaries and "扣分 · 法治（2 项）" in summaries
    assert summaries.index("加分 · 德治 · 积美（1 项）") < summaries.index("扣分 · 法治（2 项）")
    assert "<table" not in rules and "(+5)" in rules and "MEI-01" not in rules


def test_staff_board_page_actions_first_hash_wrapped_small_remove(app, world):
    client = app.test_client()
    _login(client, username="u-admin", password=PASSWORD)
    url = f"/v/{world.a.code}/boards"
    page = client.get(url).get_data(as_text=True)
    month = re.search(r'name="month" value="([^"]+)"', page).group(1)
    from datetime import UTC, datetime

    when = datetime(int(month[:4]), int(month[5:]), 15, 4, tzinfo=UTC)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        from points import ledger
        from points.ledger.statements import get_scheme
        from points.models import Village

        scheme = get_scheme(s, village=s.get(Village, world.a.id), code="household")
        for home in (world.home1, world.home2):
            ledger.award(
                s,
                scheme=scheme,
                subject_id=home.id,
                points=5,
                idem_key=f"board-{home.id}",
                actor_id=None,
                now=when,
                memo="打扫卫生",
                category="德治",
            )
    page = client.post(
        url,
        data={"csrf_token": _token(page), "action": "draft", "month": month},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "（草稿）" in page and "draft" not in re.sub(r'value="draft"|id="draft-board"', "", page)
    assert page.index('id="board-approve"') < page.index('id="board-entries"')
    rows = page.count("<summary>移除</summary>")
    assert rows >= 1 and page.count('name="reason"') == rows  # reasons hidden until asked
    board_id = re.search(r'name="board_id" value="(\d+)"', page).group(1)
    # Maker ≠ checker: a second 村两委 member approves and publishes the draft.
    client = app.test_client()
    _login(client, username="u-admin2", password=PASSWORD)
    page = client.get(f"{url}?board={board_id}").get_data(as_text=True)
    for action in ("approve", "publish"):
        page = client.post(
            url,
            data={"csrf_token": _token(page), "action": action, "board_id": board_id},
            follow_redirects=True,
        ).get_data(as_text=True)
    assert "（已发布）" in page and "published" not in page
    assert re.search(r'<code class="hash">\d+:[0-9a-f]{64}</code>', page)


def test_town_page_has_a_month_picker_and_links_villages(app, world):
    client = app.test_client()
    _login(client, username="u-supervisor", password=PASSWORD)
    page = client.get("/town/城关镇?month=2026-10").get_data(as_text=True)
    assert "2026年10月" in page and 'type="month"' in page and 'value="2026-10"' in page
    assert f'href="/public/{world.a.code}/notices"' in page
    oops = client.get("/town/城关镇?month=oops")
    assert oops.status_code == 400 and "月份格式" in oops.get_data(as_text=True)
    icon = app.test_client().get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert 'rel="icon"' in page
