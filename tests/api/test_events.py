"""Event check-in through the API: who may create and scan, the refusals a clerk at the door
and a resident with a phone would meet (each with its stable code and a Chinese message),
exactly-once closing into one group claim on notice, and the audit trail."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from api.shop import qr as shop_qr
from points.models import AuditEvent, Claim, ClaimBatch, Household, User, Village
from points.models.claims import ClaimStatus
from points.shop import credentials
from tests.api.conftest import PASSWORD, auth
from tests.api.shop_world import phone_code


def _create(client, w, token="admin", village="village-a", **fields):
    now = datetime.now(UTC)
    body = {
        "title": "十一月村民代表大会",
        "place": "村委会会议室",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "rule_code": "ZZ-09",
    }
    body.update(fields)
    return client.post(
        f"/api/v1/villages/{village}/events", json=body, headers=auth(w.tokens[token])
    )


@pytest.fixture
def event(client, world):
    response = _create(client, world)
    assert response.status_code == 201, response.json
    return response.json


def _card(app, village_id: int, household_id: int) -> str:
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        cards, _ = credentials.ensure_cards(
            s,
            village=s.get(Village, village_id),
            actor_id=None,
            now=datetime.now(UTC),
            household_ids=[household_id],
        )
        return shop_qr.card_payload(cards[0].serial)


def _door(client, w, event_id, token="clerk", village="village-a", **body):
    return client.post(
        f"/api/v1/villages/{village}/events/{event_id}/checkins",
        json=body,
        headers=auth(w.tokens[token]),
    )


def _self(client, w, code, token="resident", village="village-a"):
    return client.post(
        f"/api/v1/villages/{village}/events/checkin",
        json={"code": code},
        headers=auth(w.tokens[token]),
    )


def _refused(response, status, code):
    assert response.status_code == status, response.json
    assert response.json["error"] == code
    message = response.json["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message  # plain Chinese
    return message


def test_only_admins_create_and_staff_at_the_door_read(client, world):
    for role in ("clerk", "recorder", "reviewer", "resident"):
        assert _create(client, world, token=role).status_code == 403
    created = _create(client, world)
    assert created.status_code == 201
    assert created.json["state"] == "open"
    assert "/v/village-a/events/join/" in created.json["qr_url"]
    for role in ("clerk", "recorder"):
        listed = client.get("/api/v1/villages/village-a/events", headers=auth(world.tokens[role]))
        assert [e["title"] for e in listed.json] == ["十一月村民代表大会"]
    resident = client.get(
        "/api/v1/villages/village-a/events", headers=auth(world.tokens["resident"])
    )
    assert resident.status_code == 403


def test_create_refuses_bad_windows_unknown_rules_and_deductions(client, world):
    now = datetime.now(UTC)
    backwards = _create(client, world, ends_at=(now - timedelta(hours=2)).isoformat())
    assert _refused(backwards, 422, "invalid_input") == "结束时间要晚于开始时间"
    assert _create(client, world, rule_code="NOPE-1").status_code == 404
    assert _refused(_create(client, world, rule_code="FZ-59"), 422, "invalid_input") == (
        "活动只能选加分项目"
    )
    groups = _create(client, world, audience="groups")
    assert _refused(groups, 422, "invalid_input") == "请至少选择一个小组"


def test_three_ways_in_and_each_household_once(app, client, world, event):
    event_id = event["id"]
    # The resident scanned the poster with their phone.
    me = _self(client, world, event["qr_url"])
    assert me.status_code == 201, me.json
    assert me.json["method"] == "self" and me.json["household_id"] == world.home1.id
    again = _self(client, world, event["qr_url"])
    assert _refused(again, 409, "already_checked_in") == "本户已经签到过了，不用重复签到"
    # Their household's card at the door is the same household: refused too.
    card1 = _card(app, world.a.id, world.home1.id)
    _refused(_door(client, world, event_id, code=card1), 409, "already_checked_in")
    # home2's phone code at the door; the same code again is spent.
    code2 = phone_code(app, world.a.id, world.home2.id)
    assert _door(client, world, event_id, code=code2).status_code == 201
    _refused(_door(client, world, event_id, code=code2), 409, "token_used")
    # A walk-in found by name (a new household of group 1).
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        from tests.factories import make_household

        extra = make_household(s, s.get(Village, world.a.id), world.group1, members=1)
        walk_in = extra.members[0].id
    found = _door(client, world, event_id, token="recorder", resident_id=walk_in)
    assert found.status_code == 201 and found.json["method"] == "name"
    listed = client.get(
        f"/api/v1/villages/village-a/events/{event_id}/attendees",
        headers=auth(world.tokens["clerk"]),
    ).json
    assert [a["method"] for a in listed] == ["self", "phone", "name"]
    assert len({a["household_id"] for a in listed}) == 3


def test_refused_outside_the_window(app, client, world):
    now = datetime.now(UTC)
    later = _create(
        client,
        world,
        starts_at=(now + timedelta(hours=2)).isoformat(),
        ends_at=(now + timedelta(hours=3)).isoformat(),
    ).json
    message = _refused(_self(client, world, later["qr_url"]), 409, "checkin_not_open")
    assert message.startswith("现在不在签到时间内")
    card = _card(app, world.a.id, world.home2.id)
    _refused(_door(client, world, later["id"], code=card), 409, "checkin_not_open")
    earlier = _create(
        client,
        world,
        starts_at=(now - timedelta(hours=3)).isoformat(),
        ends_at=(now - timedelta(hours=1)).isoformat(),
    ).json
    _refused(_self(client, world, earlier["qr_url"]), 409, "checkin_not_open")


def test_refused_from_another_village(app, client, world, event):
    from points.auth.passwords import hash_password

    # Village B's household card at village A's door.
    card_b = _card(app, world.b.id, world.home_b.id)
    _refused(_door(client, world, event["id"], code=card_b), 422, "token_wrong_village")
    # A resident of village B scanning village A's poster.
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        home_b = s.get(Household, world.home_b.id)
        s.add(
            User(
                display_name="外村村民",
                phone="13900009999",
                resident_id=home_b.members[0].id,
                pin_hash=hash_password("246810"),
            )
        )
    signed = client.post("/api/v1/auth/token", json={"phone": "13900009999", "pin": "246810"})
    world.tokens["resident_b"] = signed.json["token"]
    message = _refused(
        _self(client, world, event["qr_url"], token="resident_b"), 403, "event_wrong_village"
    )
    assert message == "这是其他村的活动，不能签到"
    # Village B's event QR presented under village A's address.
    event_b = _create(client, world, token="admin_b", village="village-b").json
    token_b = event_b["qr_url"].rsplit("/", 1)[1]
    _refused(_self(client, world, token_b), 403, "event_wrong_village")
    # A forged or damaged code.
    forged = event["qr_url"][:-3] + ("abc" if not event["qr_url"].endswith("abc") else "xyz")
    _refused(_self(client, world, forged), 422, "token_invalid")


def test_refused_when_not_invited(app, client, world):
    groups = _create(client, world, audience="groups", group_ids=[world.group2.id]).json
    message = _refused(_self(client, world, groups["qr_url"]), 403, "not_invited")
    assert message == "本次活动只限二组参加"
    card2 = _card(app, world.a.id, world.home2.id)
    assert _door(client, world, groups["id"], code=card2).status_code == 201
    party = _create(client, world, audience="party").json
    # The signed-in resident (home1's second member) is not a party member.
    _refused(_self(client, world, party["qr_url"]), 403, "not_invited")
    # home1 has a party member, so its card is let in; home2 has none.
    card1 = _card(app, world.a.id, world.home1.id)
    assert _door(client, world, party["id"], code=card1).status_code == 201
    _refused(_door(client, world, party["id"], code=card2), 403, "not_invited")


def test_closing_makes_one_group_claim_on_notice_with_the_list(app, client, world, event):
    event_id = event["id"]
    assert _self(client, world, event["qr_url"]).status_code == 201
    card2 = _card(app, world.a.id, world.home2.id)
    assert _door(client, world, event_id, code=card2).status_code == 201
    url = f"/api/v1/villages/village-a/events/{event_id}/close"
    assert client.post(url, headers=auth(world.tokens["clerk"])).status_code == 403
    closed = client.post(url, headers=auth(world.tokens["admin"]))
    assert closed.status_code == 200, closed.json
    assert closed.json["event"]["state"] == "closed"
    assert len(closed.json["claims"]) == 2
    with app.extensions["points.sessionmaker"]() as s:
        batch = s.get(ClaimBatch, closed.json["batch_id"])
        assert batch.grouped and batch.title == "十一月村民代表大会"
        claims = s.query(Claim).filter(Claim.batch_id == batch.id).all()
        assert {c.household_id for c in claims} == {world.home1.id, world.home2.id}
        assert {c.status for c in claims} == {ClaimStatus.IN_NOTICE}
        numbers = [s.get(Household, h).number for h in (world.home1.id, world.home2.id)]
        for claim in claims:
            assert "签到 2 户" in claim.description
            assert all(n in claim.description for n in numbers)
        actions = [a.action for a in s.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions.count("event.checkin") == 2
    assert actions[-1] == "event.close" and "event.create" in actions
    # The public notice shows the group award as one row.
    notices = client.get("/api/v1/public/village-a/notices").json
    assert sum(1 for n in notices if "十一月村民代表大会" in n["item"] + n["who"]) == 1
    # Closed: no second claim, no more check-ins.
    _refused(client.post(url, headers=auth(world.tokens["admin2"])), 409, "event_closed")
    card_late = _door(client, world, event_id, resident_id=world.members[world.home2.id][1])
    _refused(card_late, 409, "checkin_not_open")


def test_nobody_came_closes_without_a_claim(client, world, event):
    url = f"/api/v1/villages/village-a/events/{event['id']}/close"
    closed = client.post(url, headers=auth(world.tokens["admin"]))
    assert closed.status_code == 200
    assert closed.json["batch_id"] is None and closed.json["claims"] == []


@pytest.mark.slow
def test_two_admins_closing_at_once_make_one_claim(app, client, world, event):
    """Two 村两委 members press 结束签到 at the same moment (real concurrent requests on one
    database): one closes it, the other is told it is closed; one group claim exists."""
    assert _self(client, world, event["qr_url"]).status_code == 201
    url = f"/api/v1/villages/village-a/events/{event['id']}/close"
    barrier = threading.Barrier(2, timeout=30)
    answers: list = [None, None]

    def close(i: int, who: str) -> None:
        c = app.test_client()
        barrier.wait()
        response = c.post(url, headers=auth(world.tokens[who]))
        answers[i] = (response.status_code, response.get_json())

    threads = [
        threading.Thread(target=close, args=(i, who)) for i, who in enumerate(("admin", "admin2"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not any(t.is_alive() for t in threads)
    statuses = sorted(a[0] for a in answers)
    assert statuses == [200, 409], answers
    assert next(a[1] for a in answers if a[0] == 409)["error"] == "event_closed"
    with app.extensions["points.sessionmaker"]() as s:
        assert s.query(ClaimBatch).count() == 1
        assert s.query(Claim).filter(Claim.batch_id.isnot(None)).count() == 1


def test_the_printed_poster_checks_a_resident_in(app, world, event):
    """The A4 poster's QR, read from the printed page as a phone camera would, is the event's
    check-in address; the page and poster are for staff at the door, not for residents."""
    import io

    import pypdfium2
    import zxingcpp

    from tests.api.test_pages import _login

    staff = app.test_client()
    _login(staff, username="u-clerk", password=PASSWORD)
    poster = staff.get(f"/v/village-a/events/{event['id']}/poster.pdf")
    assert poster.status_code == 200 and poster.mimetype == "application/pdf"
    doc = pypdfium2.PdfDocument(io.BytesIO(poster.data))
    try:
        assert len(doc) == 1 and doc[0].get_size() == pytest.approx((595.3, 841.9), abs=1)
        image = doc[0].render(scale=1.5).to_pil()
        words = doc[0].get_textpage().get_text_bounded()
    finally:
        doc.close()
    # What attending earns, from the event's rule in force on its day (a resident reads it).
    assert "参加可得" in words and "每户一次" in words, words
    found = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in found] == [event["qr_url"]]

    phone = app.test_client()
    _login(phone, phone="13800001111", pin="123456")
    path = event["qr_url"].split("://", 1)[1].split("/", 1)[1]
    assert phone.get(f"/v/village-a/events/{event['id']}/poster.pdf").status_code == 403
    page = phone.get("/" + path)
    assert page.status_code == 200 and "签到（本户一次）" in page.get_data(as_text=True)
    token = _token_of(page.get_data(as_text=True))
    done = phone.post("/" + path, data={"csrf_token": token})
    assert "签到成功" in done.get_data(as_text=True)
    again = phone.post("/" + path, data={"csrf_token": token}, follow_redirects=True)
    assert "本户已经签到过了" in again.get_data(as_text=True)


def _token_of(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# The door is the hot path (a queue of villagers with cards): its statements are counted.
CARD_CHECKIN_BUDGET = 8  # sign-in, village, event, card, household, once?, insert, audit
CLOSE_BUDGET = 14  # whatever the number of households: set-based


def test_a_card_at_the_door_and_closing_twenty_stay_within_their_statement_budgets(
    app, client, world, event
):
    from tests.api.test_statement_budget import StatementLog
    from tests.factories import make_household

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        from points.models import Group

        village, group = s.get(Village, world.a.id), s.get(Group, world.group2.id)
        homes = [make_household(s, village, group).id for _ in range(20)]
    cards = [_card(app, world.a.id, h) for h in homes]
    assert _door(client, world, event["id"], code=cards[0]).status_code == 201  # warm caches
    with StatementLog(app) as log:
        response = _door(client, world, event["id"], code=cards[1])
    assert response.status_code == 201, response.json
    assert len(log.statements) <= CARD_CHECKIN_BUDGET, log.report()
    for card in cards[2:]:
        assert _door(client, world, event["id"], code=card).status_code == 201
    with StatementLog(app) as log:
        closed = client.post(
            f"/api/v1/villages/village-a/events/{event['id']}/close",
            headers=auth(world.tokens["admin"]),
        )
    assert closed.status_code == 200 and len(closed.json["claims"]) == 20
    assert len(log.statements) <= CLOSE_BUDGET, log.report()


def test_menus_show_event_pages_only_to_roles_that_open_them(app, world, event):
    from tests.api.test_pages import _login

    for role, sees in (("admin", True), ("clerk", True), ("recorder", True), ("reviewer", False)):
        staff = app.test_client()
        _login(staff, username=f"u-{role}", password=PASSWORD)
        home = staff.get("/v/village-a/events")
        assert home.status_code == (200 if sees else 403), role
        menu = staff.get(f"/v/village-a/events/{event['id']}" if sees else "/v/village-a/review")
        assert ("活动签到" in menu.get_data(as_text=True)) is sees, role
        if sees:
            creating = "新建活动" in home.get_data(as_text=True)
            assert creating is (role == "admin"), role
    phone = app.test_client()
    _login(phone, phone="13800001111", pin="123456")
    mine = phone.get("/v/village-a/events/scan").get_data(as_text=True)
    assert "扫码签到" in mine and "活动签到" not in mine
    assert phone.get("/v/village-a/events").status_code == 403


def test_a_walk_in_is_found_by_name_and_checked_in_at_the_door(app, world, event):
    from tests.api.test_pages import _login

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        person = s.get(Household, world.home2.id).members[1]
        person.name = "王秀英"
        person_id, number = person.id, s.get(Household, world.home2.id).number
    clerk = app.test_client()
    _login(clerk, username="u-clerk", password=PASSWORD)
    page = clerk.get(f"/v/village-a/events/{event['id']}?q=秀英").get_data(as_text=True)
    assert "王秀英" in page and f"户号 {number}" in page
    done = clerk.post(
        f"/v/village-a/events/{event['id']}/walkin",
        data={"csrf_token": _token_of(page), "resident_id": str(person_id)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"签到成功：户号 {number}" in done and "按姓名" in done and "王秀英" in done
    missing = clerk.get(f"/v/village-a/events/{event['id']}?q=不存在的人").get_data(as_text=True)
    assert "没有找到" in missing
