"""Party-scheme events (主题党日): the event names the party scheme and one of its rules; only
party members check in, once each (two of one household both count); closing makes ONE group
claim whose members are the attending party members, each on notice with the party rule's
points; a household event beside it still works per household."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from points.auth.passwords import hash_password
from points.db import utcnow
from points.models import Claim, ClaimBatch, Resident, Scheme, User, Village
from points.models.claims import ClaimStatus
from tests.api.conftest import auth
from tests.api.shop_world import phone_code
from tests.api.test_events import _card, _create, _door, _refused, _self
from tests.api.test_party_track import PARTY_RULES
from tests.factories import adopt_catalog


@pytest.fixture
def party(app, client, world):
    """The party catalog adopted; two party members (home1's third member, who signs in with
    a phone, and home2's head); a party-scheme event open now."""
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        scheme = s.query(Scheme).filter_by(village_id=world.a.id, code="party").one()
        adopt_catalog(s, scheme, PARTY_RULES, now=utcnow(), adopted_on=date(2026, 1, 1))
        s.get(Resident, world.members[world.home2.id][0]).is_party_member = True
        s.add(
            User(
                display_name="党员",
                phone="13800002222",
                resident_id=world.members[world.home1.id][2],
                pin_hash=hash_password("654321"),
            )
        )
    signed = client.post("/api/v1/auth/token", json={"phone": "13800002222", "pin": "654321"})
    assert signed.status_code == 201, signed.json
    world.tokens["member"] = signed.json["token"]
    created = _create(client, world, title="十一月主题党日", scheme="party", rule_code="DJ-01")
    assert created.status_code == 201, created.json
    event = created.json
    assert (event["scheme"], event["per_person"], event["audience"]) == ("party", True, "party")
    return event


def test_two_members_check_in_and_closing_makes_one_party_group_claim(app, client, world, party):
    member1, member2 = world.members[world.home1.id][2], world.members[world.home2.id][0]
    # One party member scans the event QR with their own phone.
    me = _self(client, world, party["qr_url"], token="member")
    assert me.status_code == 201, me.json
    assert (me.json["resident_id"], me.json["per_person"]) == (member1, True)
    again = _self(client, world, party["qr_url"], token="member")
    assert _refused(again, 409, "already_checked_in") == "该党员已经签到过了，不用重复签到"
    # The other is found by name at the door.
    found = _door(client, world, party["id"], resident_id=member2)
    assert found.status_code == 201, found.json
    assert found.json["method"] == "name" and found.json["resident_id"] == member2
    listed = client.get(
        f"/api/v1/villages/village-a/events/{party['id']}/attendees",
        headers=auth(world.tokens["clerk"]),
    ).json
    assert [a["resident_id"] for a in listed] == [member1, member2]

    closed = client.post(
        f"/api/v1/villages/village-a/events/{party['id']}/close",
        headers=auth(world.tokens["admin"]),
    )
    assert closed.status_code == 200, closed.json
    assert len(closed.json["claims"]) == 2
    with app.extensions["points.sessionmaker"]() as s:
        scheme = s.query(Scheme).filter_by(village_id=world.a.id, code="party").one()
        assert s.query(ClaimBatch).count() == 1
        batch = s.get(ClaimBatch, closed.json["batch_id"])
        assert batch.grouped and batch.title == "十一月主题党日"
        claims = s.query(Claim).filter(Claim.batch_id == batch.id).all()
        assert {(c.resident_id, c.household_id) for c in claims} == {
            (member1, world.home1.id),
            (member2, world.home2.id),
        }
        assert {(c.scheme_id, c.points, c.status) for c in claims} == {
            (scheme.id, 30, ClaimStatus.IN_NOTICE)
        }
        assert all("签到 2 人" in c.description for c in claims)
    # The 公示栏 shows the award as one row counting people.
    notices = client.get("/api/v1/public/village-a/notices").json
    rows = [n for n in notices if n["who"] == "十一月主题党日"]
    assert len(rows) == 1 and rows[0]["group"] == "2 人，每人", rows


def test_non_members_are_refused_in_every_way(app, client, world, party):
    # The signed-in resident (home1's second member) is no party member.
    message = _refused(_self(client, world, party["qr_url"]), 403, "not_party_member")
    assert "党员" in message
    non_member = world.members[world.home1.id][0]
    _refused(_door(client, world, party["id"], resident_id=non_member), 403, "not_party_member")
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        for rid in world.members[world.home2.id]:
            s.get(Resident, rid).is_party_member = False
    # A household with no party member: its card is refused, and its phone code stays usable.
    card2 = _card(app, world.a.id, world.home2.id)
    message = _refused(_door(client, world, party["id"], code=card2), 403, "not_party_member")
    assert message == "本次活动计党员积分，该户没有党员，不能签到"
    code2 = phone_code(app, world.a.id, world.home2.id)
    _refused(_door(client, world, party["id"], code=code2), 403, "not_party_member")
    # A household with one party member: its card checks that member in.
    card1 = _card(app, world.a.id, world.home1.id)
    door = _door(client, world, party["id"], code=card1)
    assert door.status_code == 201, door.json
    assert door.json["resident_id"] == world.members[world.home1.id][2]
    # A household with two: the card cannot say who came.
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        s.get(Resident, world.members[world.home1.id][1]).is_party_member = True
    message = _refused(_door(client, world, party["id"], code=card1), 409, "member_required")
    assert "按姓名签到" in message


def test_the_party_event_is_checked_when_created(client, world, party):
    # A household rule is not in the party catalog; a party event is not for 小组.
    assert _create(client, world, scheme="party", rule_code="ZZ-09").status_code == 404
    groups = _create(
        client, world, scheme="party", rule_code="DJ-01", audience="groups", group_ids=[1]
    )
    _refused(groups, 422, "invalid_input")
    # A household event stays once per household, its audience as chosen.
    home = _create(client, world, rule_code="ZZ-09", audience="party").json
    assert (home["scheme"], home["per_person"], home["audience"]) == ("household", False, "party")


def test_the_create_form_offers_each_schemes_rules(app, world, party):
    from tests.api.test_pages import PASSWORD, _login

    staff = app.test_client()
    _login(staff, username="u-admin", password=PASSWORD)
    page = staff.get("/v/village-a/events").get_data(as_text=True)
    assert 'value="household:ZZ-09"' in page and 'value="party:DJ-01"' in page
    assert "只限党员，每人一次" in page


@pytest.mark.slow
def test_two_admins_closing_a_party_event_make_one_claim(app, client, world, party):
    assert _self(client, world, party["qr_url"], token="member").status_code == 201
    member2 = world.members[world.home2.id][0]
    assert _door(client, world, party["id"], resident_id=member2).status_code == 201
    url = f"/api/v1/villages/village-a/events/{party['id']}/close"
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
    assert sorted(a[0] for a in answers) == [200, 409], answers
    with app.extensions["points.sessionmaker"]() as s:
        assert s.query(ClaimBatch).count() == 1
        assert s.query(Claim).filter(Claim.batch_id.isnot(None)).count() == 2
        assert s.get(Village, world.a.id) is not None


def test_closing_a_twenty_member_party_event_keeps_the_batch_budget(app, client, world, party):
    """Closing runs the batch path set-based: the statements do not grow with the attendance."""
    from points import events
    from points.models.events import Event
    from points.org.access import load_actor
    from tests.api.test_statement_budget import BATCH_BUDGET, StatementLog
    from tests.factories import make_household

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        event = s.get(Event, party["id"])
        clerk = load_actor(s, world.users["clerk"].id)
        for _ in range(20):
            member = make_household(s, village, members=1).members[0]
            member.is_party_member = True
            s.flush()
            events.check_in_by_name(
                s, event=event, resident_id=member.id, actor=clerk, now=utcnow()
            )
    # Warm the caches (compiled statements, the adopted catalog) on another, small event.
    other = _create(client, world, scheme="party", rule_code="DJ-01").json
    warm = _door(client, world, other["id"], resident_id=world.members[world.home2.id][0])
    assert warm.status_code == 201, warm.json
    url = "/api/v1/villages/village-a/events/{}/close"
    headers = auth(world.tokens["admin"])
    assert client.post(url.format(other["id"]), headers=headers).status_code == 200
    with StatementLog(app) as log:
        closed = client.post(url.format(party["id"]), headers=headers)
    assert closed.status_code == 200, closed.json
    assert len(closed.json["claims"]) == 20
    assert len(log.statements) <= BATCH_BUDGET, log.report()


def test_the_party_event_page_and_poster_say_party_members_once_each(app, world, party):
    import io

    import pypdfium2

    from tests.api.test_pages import PASSWORD, _login

    staff = app.test_client()
    _login(staff, username="u-clerk", password=PASSWORD)
    page = staff.get(f"/v/village-a/events/{party['id']}").get_data(as_text=True)
    assert "党员登录后用手机扫码签到，每人一次" in page and 'id="party-door"' in page
    assert "0</span> 人）" in page
    poster = staff.get(f"/v/village-a/events/{party['id']}/poster.pdf")
    assert poster.status_code == 200
    doc = pypdfium2.PdfDocument(io.BytesIO(poster.data))
    try:
        text = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    assert "党员积分，每人一次" in text and "党员本人扫码签到，每人一次" in text
