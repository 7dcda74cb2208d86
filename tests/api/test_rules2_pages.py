"""Rules engine 2 as the public reads it: the 积分标准 page in plain Chinese (campaign dates,
automatic conditions, repeats, veto, once-only, notice days) and the 公示栏 saying why."""

from __future__ import annotations

from datetime import date

from points import claims
from points.claims import ClaimInput
from points.db import utcnow
from points.models import Scheme, Village
from points.org.access import load_actor
from points.periods import local_date
from tests.api.conftest import auth
from tests.factories import adopt_catalog

BASE = {"unit": "time", "recorder_roles": ["admin", "recorder"], "subjects": ["household"]}
RULES = [
    dict(BASE, code="MEI-05", name="参加环境整治集中行动", category="德治", sign=1, points=3,
         review="never", caps={"month": 12}, campaign_name="环境宣传月",
         campaign_from="2026-11-01", campaign_to="2026-11-30", campaign_multiplier=2),
    dict(BASE, code="MEI-51", name="乱倒垃圾", category="德治", sign=-1, points=2,
         review="always", repeat_window="year", repeat_multiplier=2, repeat_points=10),
    dict(BASE, code="FZ-55", name="打架斗殴", category="法治", sign=-1, points=10,
         review="always", veto="year"),
    dict(BASE, code="JIAN-05", name="签订移风易俗承诺书", category="德治", sign=1, points=2,
         review="never", once=True),
    dict(BASE, code="ZZ-02", name="参加院坝协商会", category="自治", sign=1, points=1,
         review="never", notice_days=0),
    dict(BASE, code="FZ-21", name="当月无违规", category="法治", sign=1, points=2,
         review="never", auto="month", recorder_roles=["admin"]),
]  # fmt: skip


def adopt(app, world):
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        scheme = s.query(Scheme).filter_by(village_id=world.a.id, code="household").one()
        adopt_catalog(s, scheme, RULES, now=utcnow(), adopted_on=date(2026, 2, 1))


def test_the_public_rules_page_explains_every_new_kind(client, app, world):
    adopt(app, world)
    page = client.get(f"/public/{world.a.code}/rules").get_data(as_text=True)
    assert (
        "环境宣传月</strong>：2026-11-01 至 2026-11-30，“参加环境整治集中行动”按 2 倍计分" in page
    )
    assert "每月自动评定：当月无扣分（任何项目）" in page
    assert "一年内第 2 次按 2 倍扣分" in page and "一年内第 3 次起每次扣 10 分" in page
    assert "一票否决：当年不能上红榜、不评星级" in page
    assert "每户（人）限一次" in page
    assert "无需公示，登记即入账" in page


def test_the_notice_board_says_why_a_deduction_doubled(client, app, world):
    adopt(app, world)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        scheme = s.query(Scheme).filter_by(village_id=world.a.id, code="household").one()
        recorder = load_actor(s, world.users["recorder"].id)
        reviewer = load_actor(s, world.users["reviewer"].id)
        today = local_date(utcnow())
        for _ in range(2):
            item = ClaimInput(
                household_id=world.home1.id,
                rule_code="MEI-51",
                occurred_on=today,
                description="乱倒建筑垃圾",
            )
            c = claims.record(
                s, village=village, scheme=scheme, actor=recorder, item=item, now=utcnow()
            )
            claims.approve(s, claim=c, actor=reviewer, now=utcnow())
    page = client.get(f"/public/{world.a.code}/notices").get_data(as_text=True)
    assert "一年内第 2 次，按 2 倍扣分" in page and "-4" in page
    notes = client.get(f"/api/v1/public/{world.a.code}/notices").json
    assert [n["note"] for n in notes if n["item"] == "乱倒垃圾"] == [
        None,
        "一年内第 2 次，按 2 倍扣分",
    ]
    # The claim itself, for staff, carries the same reason.
    listed = client.get(
        f"/api/v1/villages/{world.a.code}/claims", headers=auth(world.tokens["admin"])
    ).json
    assert "一年内第 2 次，按 2 倍扣分" in [c["rule_note"] for c in listed]


def test_the_grid_worker_reads_why_and_whether_it_posted(app, world):
    from tests.api.conftest import PASSWORD
    from tests.api.test_pages import _login, _token

    adopt(app, world)
    recorder = app.test_client()
    _login(recorder, username="u-recorder", password=PASSWORD)

    def record(code, description=""):
        page = recorder.get(f"/v/{world.a.code}/record").get_data(as_text=True)
        return recorder.post(
            f"/v/{world.a.code}/record",
            data={
                "csrf_token": _token(page),
                "scheme": "household",
                "rule_code": code,
                "occurred_on": local_date(utcnow()).isoformat(),
                "quantity": "1",
                "description": description,
                "household_id": str(world.home1.id),
            },
            follow_redirects=True,
        ).get_data(as_text=True)

    assert "已登记 -2 分，待审核" in record("MEI-51", "乱倒垃圾")
    assert "已登记 -4 分，待审核（一年内第 2 次，按 2 倍扣分）" in record("MEI-51", "又倒了")
    assert "已登记 +1 分，已入账（本项无需公示）" in record("ZZ-02")
