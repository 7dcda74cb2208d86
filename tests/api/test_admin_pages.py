"""The 村两委's console through the pages (Flask test client, real database): role menus whose
every link opens, the roster preview that writes nothing until confirmed, PINs and their slips,
staff accounts, the catalog in the browser, settings, goods, cards and the periods page."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from points.db import utcnow
from points.models import AuditEvent, Household, Resident, User
from points.periods import local_date
from tests.api.conftest import PASSWORD
from tests.api.shop_world import build_shop

HREF = re.compile(r'<a href="([^"]+)"[^>]*>([^<]+)</a>')


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _signed_in(app, **creds):
    client = app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, **creds})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client, response.headers["Location"]


def _nav(page: str) -> list[tuple[str, str]]:
    nav = page.split("<nav>", 1)[1].split("</nav>", 1)[0]
    return [(label, href) for href, label in HREF.findall(nav) if href.startswith("/v/")]


@pytest.mark.parametrize(
    ("role", "expected", "absent"),
    [
        (
            "admin",
            {"工作台", "花名册", "账号", "积分标准", "周期与对账", "户卡"},
            {"兑换"},
        ),  # the counter scans for clerks only
        ("reviewer", {"工作台", "审核"}, {"登记", "花名册", "兑换", "账号"}),
        ("recorder", {"登记"}, {"工作台", "审核", "花名册", "兑换"}),
        ("clerk", {"兑换", "库存"}, {"工作台", "登记", "审核", "花名册"}),
    ],
)
def test_every_menu_link_of_every_staff_role_opens(app, world, role, expected, absent):
    build_shop(app, world)  # the counter serves a store; a village without one is told to open one
    client, landing = _signed_in(app, username=f"u-{role}", password=PASSWORD)
    page = client.get(landing)
    assert page.status_code == 200
    links = _nav(page.get_data(as_text=True))
    labels = {label for label, _ in links}
    assert expected <= labels and not (absent & labels), labels
    for label, href in links:
        response = client.get(href)
        assert response.status_code == 200, (role, label, href)


def test_resident_menu_links_open(app, world):
    client, landing = _signed_in(app, phone="13800001111", pin="123456")
    links = _nav(client.get(landing).get_data(as_text=True))
    assert {"我的积分", "积分超市"} <= {label for label, _ in links}
    assert not any("/roster" in href or "/record" in href for _, href in links)
    for label, href in links:
        assert client.get(href).status_code == 200, (label, href)


def _sheet(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


HEADER = ["户号", "小组", "门牌", "姓名", "户主", "手机号", "党员", "党支部", "期初积分"]


def _count(app, model) -> int:
    with app.extensions["points.sessionmaker"]() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def test_roster_preview_lists_every_problem_and_writes_nothing_then_imports(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/roster").get_data(as_text=True)
    broken = _sheet(
        [
            HEADER,
            ["101", "三组", "", "王五", "是", "1380000", "否", "", ""],
            ["101", "四组", "", "", "是", "", "也许", "", "-5"],
        ]
    )
    before = _count(app, Household), _count(app, Resident)
    response = client.post(
        f"/v/{code}/roster",
        data={"csrf_token": _token(page), "file": (io.BytesIO(broken), "roster.xlsx")},
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "没有导入任何数据" in text
    for expected in ("第 2 行", "手机号", "第 3 行", "姓名", "党员", "期初积分", "多个户主"):
        assert expected in text, expected
    assert (_count(app, Household), _count(app, Resident)) == before

    good = _sheet(
        [
            HEADER,
            ["101", "三组", "南街5号", "王五", "是", "13900000101", "否", "", 80],
            ["101", "三组", "南街5号", "王小五", "否", "", "否", "", ""],
            ["102", "三组", "", "赵六", "是", "13900000102", "是", "第一支部", ""],
        ]
    )
    response = client.post(
        f"/v/{code}/roster",
        data={"csrf_token": _token(text), "file": (io.BytesIO(good), "roster.xlsx")},
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "共 3 人、2 户" in text
    assert (_count(app, Household), _count(app, Resident)) == before  # still nothing written
    form = dict(re.findall(r'name="(token|kind)" value="([^"]+)"', text))
    response = client.post(f"/v/{code}/roster/confirm", data={"csrf_token": _token(text), **form})
    assert response.status_code == 302
    assert "已导入 2 户、3 人" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _count(app, Household) == before[0] + 2
    # The same preview cannot be imported twice.
    again = client.post(f"/v/{code}/roster/confirm", data={"csrf_token": _token(text), **form})
    assert "预览已失效" in client.get(again.headers["Location"]).get_data(as_text=True)
    # The current roster comes back as a sheet with the new people in it, phones included.
    sheet = load_workbook(io.BytesIO(client.get(f"/v/{code}/roster/current.xlsx").data))
    values = [c for row in sheet.active.iter_rows(values_only=True) for c in row]
    assert "王小五" in values and "13900000102" in values
    template = load_workbook(io.BytesIO(client.get(f"/v/{code}/roster/template.xlsx").data))
    assert [c.value for c in template.active[1]][:4] == ["户号*", "小组*", "门牌", "姓名*"]
    with app.extensions["points.sessionmaker"]() as s:
        actions = set(s.execute(select(AuditEvent.action)).scalars())
    assert {"roster.import", "roster.export"} <= actions


def test_household_changes_head_status_and_phone(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code, home = world.a.code, world.home1
    url = f"/v/{code}/households/{home.id}"
    page = client.get(url).get_data(as_text=True)
    assert "13800001111" not in page and "138****1111" in page  # phones shown masked
    head, second, third = world.members[home.id]
    post = lambda **data: client.post(url, data={"csrf_token": _token(page), **data})  # noqa: E731
    # The head cannot leave while others live in the household.
    post(action="status", resident_id=head, status="moved_out")
    assert "请先把户主改为" in client.get(url).get_data(as_text=True)
    post(action="head", resident_id=third)
    post(action="status", resident_id=head, status="moved_out")
    post(action="household", group_id=world.group2.id, door_plate="新门牌 8 号")
    # The resident who signs in changes phone: the new number signs in, the old one no more.
    post(action="resident", resident_id=second, name="新名字", phone="13911112222")
    with app.extensions["points.sessionmaker"]() as s:
        left = s.get(Resident, head)
        assert (left.status, left.active) == ("moved_out", False)
        moved = s.get(Household, home.id)
        assert (moved.head_id, moved.group_id, moved.door_plate) == (
            third,
            world.group2.id,
            "新门牌 8 号",
        )
        assert s.get(User, world.users["resident"].id).phone == "13911112222"
    client2 = app.test_client()
    token = _token(client2.get("/login").get_data(as_text=True))
    old = client2.post(
        "/login", data={"csrf_token": token, "phone": "13800001111", "pin": "123456"}
    )
    assert old.status_code == 401
    new = client2.post(
        "/login", data={"csrf_token": token, "phone": "13911112222", "pin": "123456"}
    )
    assert new.status_code == 302
    assert "已迁出" in client.get(url).get_data(as_text=True)
    # Saving the form with the phone box left blank keeps the number.
    post(action="resident", resident_id=second, name="新名字二", phone="")
    with app.extensions["points.sessionmaker"]() as s:
        assert s.get(Resident, second).phone == "13911112222"


def test_pins_set_and_printed_on_slips(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/pins").get_data(as_text=True)
    second, third = world.members[world.home1.id][1:]
    shared = client.post(
        f"/v/{code}/pins",
        data={
            "csrf_token": _token(page),
            "resident_id": [str(second), str(third)],
            "pin": "470315",
        },
    )
    assert "只能给一位村民" in client.get(shared.headers["Location"]).get_data(as_text=True)
    response = client.post(
        f"/v/{code}/pins",
        data={"csrf_token": _token(page), "resident_id": [str(second), str(third)]},
    )
    done = response.get_data(as_text=True)
    assert response.status_code == 200 and "只显示这一次" in done
    slips = re.findall(r'name="slip" value="(\d+):(\d{6})"', done)
    assert len(slips) == 2 and slips[0][1] != slips[1][1]
    # The new PIN signs in; the slip PDF is A4.
    client2 = app.test_client()
    token = _token(client2.get("/login").get_data(as_text=True))
    signed = client2.post(
        "/login",
        data={"csrf_token": token, "phone": "13800002222", "pin": dict(slips)[str(third)]},
    )
    assert signed.status_code == 302
    pdf = client.post(
        f"/v/{code}/pins/slips.pdf",
        data={"csrf_token": _token(done), "slip": [f"{r}:{p}" for r, p in slips]},
    )
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF") and b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf.data
    # A slip with a PIN that is not the resident's is refused, not printed.
    forged = client.post(
        f"/v/{code}/pins/slips.pdf",
        data={"csrf_token": _token(done), "slip": f"{third}:000001"},
    )
    assert forged.status_code == 409


def test_staff_account_created_scoped_disabled_and_password_reset(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/staff").get_data(as_text=True)
    own = world.members[world.home2.id][0]
    client.post(
        f"/v/{code}/staff",
        data={
            "csrf_token": _token(page),
            "username": "grid2",
            "display_name": "二组网格员",
            "password": "grid-pass-22",
            "role": "recorder",
            "group_id": str(world.group2.id),
            "resident_id": str(own),
        },
    )
    grid, landing = _signed_in(app, username="grid2", password="grid-pass-22")
    record = grid.get(landing).get_data(as_text=True)
    assert world.home2.number in record and world.home1.number not in record
    with app.extensions["points.sessionmaker"]() as s:
        user = s.execute(select(User).where(User.username == "grid2")).scalar_one()
        assert user.resident_id == own
    url = f"/v/{code}/staff/{user.id}"
    page = client.get(url).get_data(as_text=True)
    client.post(url, data={"csrf_token": _token(page), "action": "password", "password": "short"})
    assert "密码至少 8 位" in client.get(url).get_data(as_text=True)
    client.post(url, data={"csrf_token": _token(page), "action": "disable"})
    blocked = app.test_client()
    token = _token(blocked.get("/login").get_data(as_text=True))
    refused = blocked.post(
        "/login", data={"csrf_token": token, "username": "grid2", "password": "grid-pass-22"}
    )
    assert refused.status_code == 401
    # An admin cannot lock themselves out.
    me = world.users["admin"].id
    mine = client.get(f"/v/{code}/staff/{me}").get_data(as_text=True)
    client.post(f"/v/{code}/staff/{me}", data={"csrf_token": _token(mine), "action": "disable"})
    assert "不能停用自己的账号" in client.get(f"/v/{code}/staff/{me}").get_data(as_text=True)


def test_settings_change_is_audited_and_public(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/settings").get_data(as_text=True)
    data = {
        "csrf_token": _token(page),
        "scheme": "household",
        "redemption_threshold": "40",
        "window_days": "10",
        "notice_days": "5",
        "base_score": "0",
        "close_policy": "expire_after_n",
        "expire_after_n": "",
        "star_thresholds": "",
    }
    client.post(f"/v/{code}/settings", data=data)
    assert "n 应为 1–40" in client.get(f"/v/{code}/settings").get_data(as_text=True)
    client.post(
        f"/v/{code}/settings",
        data={**data, "expire_after_n": "2", "star_thresholds": "30,50,70,90,110"},
    )
    rules = client.get(f"/public/{code}/rules").get_data(as_text=True)
    assert "本期得分满 40 分可兑换" in rules and "每期最后 10 天" in rules and "保留 2 期" in rules
    assert "1星 30 分" in rules and "5星 110 分" in rules
    with app.extensions["points.sessionmaker"]() as s:
        event = s.execute(
            select(AuditEvent).where(AuditEvent.action == "scheme.settings")
        ).scalar_one()
    assert "redemption_threshold" in event.summary and "window_days" in event.summary


def test_a_settings_change_dated_later_is_announced_and_waits_for_its_day(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/settings").get_data(as_text=True)
    assert 'name="effective_from"' in page
    later = (local_date(utcnow()) + timedelta(days=10)).isoformat()
    data = {
        "csrf_token": _token(page),
        "privacy_mode": "masked",
        "black_months": "6",
        "board_top_n": "10",
        "effective_from": later,
    }
    response = client.post(f"/v/{code}/settings", data=data, follow_redirects=True)
    assert f"将于 {later} 起生效" in response.get_data(as_text=True)
    rules = client.get(f"/public/{code}/rules").get_data(as_text=True)
    # In force today: the old term; announced: the new one with its date.
    assert "黑榜公布 3 个月" in rules
    assert f"{later} 起，红黑榜黑榜公布期改为 6 个月" in rules
    assert "已预告、尚未生效的修改" in client.get(f"/v/{code}/settings").get_data(as_text=True)
    # A date in the past is refused in plain Chinese and nothing is written.
    past = (local_date(utcnow()) - timedelta(days=1)).isoformat()
    client.post(f"/v/{code}/settings", data={**data, "black_months": "9", "effective_from": past})
    assert "早于今天" in client.get(f"/v/{code}/settings").get_data(as_text=True)
    with app.extensions["points.sessionmaker"]() as s:
        event = s.execute(
            select(AuditEvent).where(AuditEvent.action == "village.settings")
        ).scalar_one()
    assert f"自 {later} 起生效" in event.summary and event.details["effective_from"] == later


def _edited_catalog(data: bytes, **cells) -> bytes:
    book = load_workbook(io.BytesIO(data))
    sheet = book["积分标准"]
    for ref, value in cells.items():
        sheet[ref] = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_catalog_edited_in_the_browser_problems_diff_dry_run_adopt(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/catalog").get_data(as_text=True)
    link = re.search(r'href="(/v/[^"]+/catalog/household/v1\.xlsx)"', page).group(1)
    adopted = client.get(link)
    assert adopted.status_code == 200 and adopted.data[:2] == b"PK"
    assert load_workbook(io.BytesIO(adopted.data))["积分标准"]["A2"].value == "MEI-01"
    upload = f"/v/{code}/catalog/household/upload"
    broken = _edited_catalog(adopted.data, G2="很多", B3=None)
    response = client.post(
        upload, data={"csrf_token": _token(page), "file": (io.BytesIO(broken), "c.xlsx")}
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "没有做任何改动" in text
    assert "第 2 行" in text and "分值" in text and "第 3 行" in text and "名称" in text
    assert "草案：第" not in client.get(f"/v/{code}/catalog").get_data(as_text=True)
    good = _edited_catalog(adopted.data, G2=8)
    response = client.post(
        upload, data={"csrf_token": _token(page), "file": (io.BytesIO(good), "c.xlsx")}
    )
    draft_url = response.headers["Location"]
    draft = client.get(draft_url).get_data(as_text=True)
    assert "MEI-01" in draft and "5" in draft and "8" in draft
    trial = client.get(draft_url + "?months=3").get_data(as_text=True)
    assert 'id="dry-run-result"' in trial
    response = client.post(
        f"/v/{code}/catalog/household/adopt",
        data={
            "csrf_token": _token(draft),
            "number": "2",
            "body": "村民代表大会",
            "adopted_on": "2026-11-24",
            "effective_from": "",
            "expected": "35",
            "present": "31",
            "yes": "29",
            "no": "1",
            "abstain": "1",
            "note": "逐条表决",
        },
    )
    history = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "第 2 版已通过" in history
    assert "应到 35 人，实到 31 人；赞成 29 票，反对 1 票，弃权 1 票；逐条表决" in history
    assert "admin" in history  # who recorded the adoption
    public = client.get(f"/public/{code}/rules").get_data(as_text=True)
    assert "第 2 版" in public and "+8" in public


def test_a_village_adds_a_category_in_the_sheet_and_adopts_it(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/catalog").get_data(as_text=True)
    link = re.search(r'href="(/v/[^"]+/catalog/household/v1\.xlsx)"', page).group(1)
    book = load_workbook(io.BytesIO(client.get(link).data))
    assert [c.value for c in book["类别"]["A"]][1:] == ["德治", "自治", "法治", "党建"]
    book["类别"].append(["乡风文明", "移风易俗、红白喜事简办", "是"])
    book["积分标准"]["C2"] = "乡风文明"
    out = io.BytesIO()
    book.save(out)
    response = client.post(
        f"/v/{code}/catalog/household/upload",
        data={"csrf_token": _token(page), "file": (io.BytesIO(out.getvalue()), "c.xlsx")},
    )
    draft = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "+ 新增类别 乡风文明（移风易俗、红白喜事简办）" in draft
    assert "类别 德治 → 乡风文明" in draft
    client.post(
        f"/v/{code}/catalog/household/adopt",
        data={"csrf_token": _token(draft), "number": "2", "body": "村民代表大会",
              "adopted_on": "2026-11-24", "effective_from": ""},
    )  # fmt: skip
    public = client.get(f"/public/{code}/rules").get_data(as_text=True)
    assert "<strong>乡风文明</strong>：移风易俗、红白喜事简办（扣分上黑榜）" in public
    assert "加分 · 乡风文明" in public


def test_goods_cards_lost_and_reissued(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/shop/goods").get_data(as_text=True)
    client.post(
        f"/v/{code}/shop/goods",
        data={"csrf_token": _token(page), "action": "store", "name": "村积分超市"},
    )
    page = client.get(f"/v/{code}/shop/goods").get_data(as_text=True)
    store_id = re.search(r'name="store_id" value="(\d+)"', page).group(1)
    client.post(
        f"/v/{code}/shop/goods",
        data={
            "csrf_token": _token(page),
            "action": "good",
            "store_id": store_id,
            "name": "大米（10斤）",
            "price": "50",
            "unit": "袋",
            "limit_per_period": "2",
        },
    )
    page = client.get(f"/v/{code}/shop/goods").get_data(as_text=True)
    assert 'value="大米（10斤）"' in page and 'value="50"' in page
    good_id = re.search(r'name="good_id" value="(\d+)"', page).group(1)
    client.post(
        f"/v/{code}/counter/stock",
        data={
            "csrf_token": _token(page),
            "store_id": store_id,
            "good_id": good_id,
            "kind": "donation",
            "quantity": "10",
            "source": "县供销社",
        },
    )
    donors = client.get(f"/v/{code}/shop/goods").get_data(as_text=True).split('id="donors"')[1]
    assert "县供销社" in donors and "大米（10斤）" in donors
    # A photo: shrunk, re-encoded as JPEG, served from the shelf; a non-image is refused.
    from PIL import Image

    big = io.BytesIO()
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(big, "PNG")
    edit = {
        "csrf_token": _token(page),
        "action": "edit",
        "good_id": good_id,
        "name": "大米（10斤）",
        "price": "45",
        "unit": "袋",
        "limit_per_period": "2",
        "active": "1",
    }
    client.post(f"/v/{code}/shop/goods", data={**edit, "photo": (io.BytesIO(b"%PDF-1"), "a.png")})
    assert "只能上传 JPG 或 PNG" in client.get(f"/v/{code}/shop/goods").get_data(as_text=True)
    client.post(
        f"/v/{code}/shop/goods", data={**edit, "photo": (io.BytesIO(big.getvalue()), "rice.png")}
    )
    shelf = client.get(f"/v/{code}/shop/goods").get_data(as_text=True)
    assert 'value="45"' in shelf, re.findall(r'class="flash[^"]*"[^>]*>([^<]+)', shelf)
    photo = app.test_client().get(f"/shop/{code}/goods/{good_id}/photo")
    assert photo.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(photo.data)).size == (800, 600)
    cards = client.get(f"/v/{code}/shop/cards").get_data(as_text=True)
    pdf = client.post(f"/v/{code}/shop/cards", data={"csrf_token": _token(cards), "action": "all"})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    cards = client.get(f"/v/{code}/shop/cards").get_data(as_text=True)
    card_id = re.search(r'name="card_id">\s*<option value="(\d+)"', cards).group(1)
    with app.extensions["points.sessionmaker"]() as s:
        from points.models import HouseholdCard

        old = s.get(HouseholdCard, int(card_id)).serial
    again = client.post(
        f"/v/{code}/shop/cards",
        data={"csrf_token": _token(cards), "action": "lost", "card_id": card_id, "reason": "遗失"},
    )
    assert again.status_code == 200 and again.data.startswith(b"%PDF")
    with app.extensions["points.sessionmaker"]() as s:
        from points.errors import PointsError
        from points.models import Village
        from points.shop.credentials import get_live_card

        village = s.get(Village, world.a.id)
        with pytest.raises(PointsError):
            get_live_card(s, village=village, serial=old)


def test_periods_page_previews_the_close_and_gives_the_register(app, world):
    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    page = client.get(f"/v/{code}/periods").get_data(as_text=True)
    assert "下次结账" in page and "进行中" in page
    month = re.search(r'name="month" value="(\d{4}-\d{2})"', page).group(1)
    register = client.get(f"/v/{code}/periods/register.xlsx?month={month}")
    assert register.status_code == 200
    rows = list(load_workbook(io.BytesIO(register.data)).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("序号", "时间", "类型")
    refused = client.get(f"/v/{code}/periods/statement?period=2020-Q1&scheme=household")
    assert refused.status_code in (404, 409, 422)
    # Once the period is closed (as the scheduler does), one household's statement.
    from datetime import timedelta

    from points import cycles
    from points.db import utcnow
    from points.models import Scheme
    from points.periods import local_date, period_end_utc, period_key

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        kind = s.execute(
            select(Scheme.period_kind).where(
                Scheme.village_id == world.a.id, Scheme.code == "household"
            )
        ).scalar_one()
        period = period_key(kind, local_date(utcnow()))
        cycles.reconcile(s, now=period_end_utc(kind, period) + timedelta(minutes=5))
    one = client.get(
        f"/v/{code}/periods/statement?period={period}&scheme=household"
        f"&household={world.home1.number}&format=xlsx"
    )
    assert one.status_code == 200
    rows = list(load_workbook(io.BytesIO(one.data)).active.iter_rows(values_only=True))
    numbers = [r[0] for r in rows if r and r[0] in (world.home1.number, world.home2.number)]
    assert numbers == [world.home1.number]
    pdf = client.get(f"/v/{code}/periods/statement?period={period}&scheme=household&format=pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_admin_home_lists_a_board_to_approve_and_a_period_closing_soon(app, world):
    from points import boards
    from points.db import utcnow
    from points.models import Village
    from points.periods import local_date, month_key

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        first = local_date(utcnow()).replace(day=1)
        from datetime import timedelta

        last_month = month_key(first - timedelta(days=1))
        boards.draft_board(s, village=village, month=last_month, now=utcnow())
    client, landing = _signed_in(app, username="u-admin", password=PASSWORD)
    todo = client.get(landing).get_data(as_text=True).split('id="todo"')[1].split("</ul>")[0]
    assert f"{last_month} 红黑榜待审批" in todo
    reviewer, landing = _signed_in(app, username="u-reviewer", password=PASSWORD)
    assert 'id="todo"' not in reviewer.get(landing).get_data(as_text=True)


def test_households_merged_and_split_with_points_moved_through_the_ledger(app, world):
    from points import ledger
    from points.ledger.verify import verify
    from points.models import Scheme

    client, _ = _signed_in(app, username="u-admin", password=PASSWORD)
    code = world.a.code
    keep = f"/v/{code}/households/{world.home2.id}"
    page = client.get(keep).get_data(as_text=True)
    client.post(keep, data={"csrf_token": _token(page), "action": "merge", "number": "nope"})
    assert "本村没有户号 nope" in client.get(keep).get_data(as_text=True)
    client.post(
        keep, data={"csrf_token": _token(page), "action": "merge", "number": world.home1.number}
    )
    text = client.get(keep).get_data(as_text=True)
    assert f"户号 {world.home1.number} 并入 {world.home2.number}" in text and "转入 30 分" in text
    movers = world.members[world.home1.id][1:]
    client.post(
        keep,
        data={
            "csrf_token": _token(page),
            "action": "split",
            "member_id": [str(m) for m in movers],
            "number": "NEW-1",
            "group_id": str(world.group1.id),
            "points": "12",
        },
    )
    assert "分出 NEW-1（2 人" in client.get(keep).get_data(as_text=True)
    with app.extensions["points.sessionmaker"]() as s:
        scheme = s.execute(
            select(Scheme).where(Scheme.village_id == world.a.id, Scheme.code == "household")
        ).scalar_one()
        new = s.execute(select(Household).where(Household.number == "NEW-1")).scalar_one()
        balance = {
            h: ledger.get_balance(s, scheme=scheme, subject_id=h).available
            for h in (world.home1.id, world.home2.id, new.id)
        }
        assert balance == {world.home1.id: 0, world.home2.id: 18, new.id: 12}
        assert s.get(Household, world.home1.id).active is False
        assert {r.household_id for r in s.get(Household, new.id).members} == {new.id}
        assert new.head_id == movers[0]
        assert verify(s).ok


def test_town_supervisor_creates_a_first_admin_and_a_supervisor(app, world):
    client, landing = _signed_in(app, username="u-supervisor", password=PASSWORD)
    town = client.get(landing).get_data(as_text=True)
    assert "/town/%E5%9F%8E%E5%85%B3%E9%95%87/accounts" in town or "/accounts" in town
    url = landing + "/accounts"
    page = client.get(url).get_data(as_text=True)
    # Village A already has an admin: the town does not add another.
    client.post(
        url,
        data={
            "csrf_token": _token(page),
            "village": world.a.code,
            "username": "second-admin",
            "display_name": "二号",
            "password": "second-pass-1",
        },
    )
    assert "已有管理员" in client.get(url).get_data(as_text=True)
    client.post(
        url,
        data={
            "csrf_token": _token(page),
            "username": "zhen2",
            "display_name": "镇督导员二",
            "password": "zhen2-pass-1",
        },
    )
    assert "镇督导员二（zhen2）" in client.get(url).get_data(as_text=True)
    other, landing2 = _signed_in(app, username="zhen2", password="zhen2-pass-1")
    assert landing2 == landing
    # A new village of the town gets its first admin, who lands on its own 工作台.
    from tests.factories import make_village

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        make_village(s, "village-c", town="城关镇")
    page = client.get(url).get_data(as_text=True)
    client.post(
        url,
        data={
            "csrf_token": _token(page),
            "village": "village-c",
            "username": "c-admin",
            "display_name": "丙村书记",
            "password": "c-admin-pass-1",
        },
    )
    _, landing3 = _signed_in(app, username="c-admin", password="c-admin-pass-1")
    assert landing3.endswith("/v/village-c/")
    # Another town's page is refused.
    assert client.get("/town/河西镇/accounts").status_code == 403
