"""The party track, readable: a member's score, stars and history by API and on their own page;
the branch's list for the 村两委 and the review group; nobody else's record for a resident."""

from __future__ import annotations

from datetime import date, timedelta

from points import claims, ledger
from points.auth.passwords import hash_password
from points.claims import ClaimInput
from points.db import utcnow
from points.models import Resident, Scheme, User, Village
from points.org.access import load_actor
from points.periods import local_date
from tests.api.conftest import auth
from tests.api.test_pages import _login
from tests.factories import adopt_catalog

PARTY_RULES = [
    {"code": "DJ-01", "name": "参加三会一课", "category": "党建", "sign": 1, "points": 30,
     "unit": "time", "review": "never", "recorder_roles": ["admin"],
     "subjects": ["party_member"]},
    {"code": "DJ-51", "name": "严重违纪", "category": "党建", "sign": -1, "points": 5,
     "unit": "time", "review": "always", "recorder_roles": ["admin"],
     "subjects": ["party_member"], "veto": "year"},
]  # fmt: skip


def setup_member(app, world, *, veto=False):
    """Give household 1's party member 60 points this year (2 stars), and a login."""
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        scheme = s.query(Scheme).filter_by(village_id=village.id, code="party").one()
        scheme.star_thresholds = [30, 60, 90, 120, 150]
        adopt_catalog(s, scheme, PARTY_RULES, now=utcnow(), adopted_on=date(2026, 1, 1))
        member = s.get(Resident, world.members[world.home1.id][2])
        member.party_branch = "村党支部"
        admin = load_actor(s, world.users["admin"].id)
        reviewer = load_actor(s, world.users["reviewer"].id)
        today = local_date(utcnow())
        for code in ["DJ-01", "DJ-01"] + (["DJ-51"] if veto else []):
            item = ClaimInput(
                household_id=world.home1.id,
                resident_id=member.id,
                rule_code=code,
                occurred_on=today,
                description="支部核实",
            )
            c = claims.record(
                s, village=village, scheme=scheme, actor=admin, item=item, now=utcnow()
            )
            if c.status == "pending_review":
                claims.approve(s, claim=c, actor=reviewer, now=utcnow())
            claims.post_claim(s, claim_id=c.id, now=utcnow() + timedelta(days=8))
        s.add(User(display_name="党员", phone="13800002222", resident_id=member.id,
                   pin_hash=hash_password("654321")))  # fmt: skip
        return member.id, ledger.get_balance(s, scheme=scheme, subject_id=member.id)


def test_the_branch_list_and_a_members_record_for_staff(client, app, world):
    member_id, _ = setup_member(app, world)
    admin = auth(world.tokens["admin"])
    branch = client.get(f"/api/v1/villages/{world.a.code}/party-members", headers=admin).json
    assert [(m["resident_id"], m["score"], m["stars"], m["branch"]) for m in branch][0] == (
        member_id, 60, 2, "村党支部"
    )  # fmt: skip
    one = client.get(
        f"/api/v1/villages/{world.a.code}/party-members/{member_id}",
        headers=auth(world.tokens["reviewer"]),
    ).json
    assert one["score"] == 60 and one["stars"] == 2 and one["vetoed"] is None
    assert [e["memo"] for e in one["entries"]] == ["参加三会一课：支部核实"] * 2
    # A resident who is someone else cannot read the member's record; nor can a recorder.
    for who in ("resident", "recorder"):
        denied = client.get(
            f"/api/v1/villages/{world.a.code}/party-members/{member_id}",
            headers=auth(world.tokens[who]),
        )
        assert denied.status_code == 403
    assert (
        client.get(
            f"/api/v1/villages/{world.a.code}/party-members", headers=auth(world.tokens["resident"])
        ).status_code
        == 403
    )


def test_a_member_reads_their_own_party_score_by_api_and_on_their_page(client, app, world):
    member_id, _ = setup_member(app, world, veto=True)
    token = client.post("/api/v1/auth/token", json={"phone": "13800002222", "pin": "654321"}).json
    mine = client.get(
        f"/api/v1/villages/{world.a.code}/party-members/{member_id}", headers=auth(token["token"])
    ).json
    # 60 − 5 = 55 this year, but the 一票否决 leaves no stars.
    assert mine["score"] == 55 and mine["stars"] == 0 and "严重违纪（一票否决）" in mine["vetoed"]
    page_client = app.test_client()
    _login(page_client, phone="13800002222", pin="654321")
    page = page_client.get(f"/v/{world.a.code}/my/").get_data(as_text=True)
    assert "我的党员积分" in page and 'id="party-score">55<' in page
    assert "严重违纪（一票否决）" in page and "参加三会一课：支部核实" in page


def test_a_resident_who_is_not_a_party_member_sees_no_party_section(app, world):
    page_client = app.test_client()
    _login(page_client, phone="13800001111", pin="123456")
    page = page_client.get(f"/v/{world.a.code}/my/").get_data(as_text=True)
    assert "户积分" in page and "我的党员积分" not in page
