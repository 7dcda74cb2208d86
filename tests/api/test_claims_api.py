"""A claim's whole path through the API: record → approve → 公示 → objection dismissed → the
window ends → posted exactly once, even when posting runs twice or concurrently."""

import io
import threading
from datetime import timedelta

from sqlalchemy import func, select

from points import cycles
from points.db import utcnow
from points.ledger.verify import verify
from points.models import AuditEvent, JournalEntry
from tests.api.conftest import auth, jpeg


def _post(client, url, token, **kw):
    return client.post(url, headers=auth(token), **kw)


def _reconcile(app, now):
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        return cycles.reconcile(s, now=now)


def _entries(app, claim_id):
    with app.extensions["points.sessionmaker"]() as s:
        return s.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.claim_id == claim_id)
        )


def test_the_whole_path(app, client, world):
    a = f"/api/v1/villages/{world.a.code}"
    today = utcnow().date().isoformat()
    recorded = _post(
        client,
        f"{a}/claims",
        world.tokens["recorder"],
        json={
            "household_id": world.home1.id,
            "rule_code": "SHAN-01",
            "proposed_points": 20,
            "description": "扑灭邻居家火情",
            "occurred_on": today,
        },
    )
    # Evidence is required for this item; a recorder's claim without photos is refused.
    assert recorded.status_code == 422 and recorded.json["error"] == "evidence_required"
    recorded = _post(
        client,
        f"{a}/claims",
        world.tokens["admin"],
        json={
            "household_id": world.home1.id,
            "rule_code": "FZ-51",
            "description": "参与赌博，派出所通报",
            "occurred_on": today,
        },
    )
    assert recorded.status_code == 201, recorded.json
    claim = recorded.json
    assert claim["status"] == "pending_review" and claim["points"] == -10

    approved = _post(
        client, f"{a}/claims/{claim['id']}/approve", world.tokens["reviewer"], json={"note": "属实"}
    )
    assert approved.status_code == 200 and approved.json["status"] == "in_notice"

    public = client.get(f"/api/v1/public/{world.a.code}/notices").json
    shown = next(n for n in public if n["id"] == claim["id"])
    assert shown["item"] == "赌博" and shown["points"] == -10
    assert "*" in shown["who"]  # masked by default: 张*三

    objection = _post(
        client,
        f"{a}/claims/{claim['id']}/objections",
        world.tokens["resident"],
        json={"reason": "当天我在外地打工"},
    )
    assert objection.status_code == 201
    dismissed = _post(
        client,
        f"{a}/objections/{objection.json['id']}/resolve",
        world.tokens["reviewer"],
        json={"uphold": False, "note": "有监控为证"},
    )
    assert dismissed.json["status"] == "dismissed"

    # Before the window ends nothing posts; after it, twice in a row posts once.
    _reconcile(app, utcnow() + timedelta(days=6))
    assert _entries(app, claim["id"]) == 0
    later = utcnow() + timedelta(days=8)
    _reconcile(app, later)
    _reconcile(app, later)
    assert _entries(app, claim["id"]) == 1
    again = _post(client, f"{a}/claims/{claim['id']}/post", world.tokens["admin"])
    assert again.status_code == 200 and again.json["status"] == "posted"  # idempotent
    assert _entries(app, claim["id"]) == 1
    shown = client.get(f"{a}/claims/{claim['id']}", headers=auth(world.tokens["admin"])).json
    assert shown["status"] == "posted" and shown["entry_id"]
    statement = client.get(
        f"{a}/households/{world.home1.id}/statement", headers=auth(world.tokens["resident"])
    ).json
    assert statement["entries"][0]["memo"].startswith("赌博")
    with app.extensions["points.sessionmaker"]() as s:
        assert verify(s).ok


def test_concurrent_posting_posts_once(app, client, world):
    a = f"/api/v1/villages/{world.a.code}"
    ids = []
    for home in (world.home1, world.home2):
        r = _post(
            client,
            f"{a}/claims",
            world.tokens["admin"],
            json={
                "household_id": home.id,
                "rule_code": "MEI-01",
                "occurred_on": utcnow().date().isoformat(),
            },
        )
        assert r.status_code == 201 and r.json["status"] == "in_notice"
        ids.append(r.json["id"])
    later = utcnow() + timedelta(days=8)
    barrier = threading.Barrier(4)
    errors = []

    def run():
        barrier.wait()
        try:
            _reconcile(app, later)
        except Exception as exc:  # a loser must not corrupt anything; record what it saw
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [_entries(app, i) for i in ids] == [1, 1], errors
    with app.extensions["points.sessionmaker"]() as s:
        assert verify(s).ok


def test_upheld_objection_leaves_no_trace_and_keeps_history(app, client, world):
    a = f"/api/v1/villages/{world.a.code}"
    r = _post(
        client,
        f"{a}/claims",
        world.tokens["recorder"],
        json={
            "household_id": world.home1.id,
            "rule_code": "MEI-01",
            "occurred_on": utcnow().date().isoformat(),
        },
    )
    claim_id = r.json["id"]
    o = _post(
        client,
        f"{a}/claims/{claim_id}/objections",
        world.tokens["clerk"],
        json={"reason": "院子里堆满杂物"},
    )
    _post(
        client,
        f"{a}/objections/{o.json['id']}/resolve",
        world.tokens["reviewer"],
        json={"uphold": True, "note": "现场核实属实"},
    )
    _reconcile(app, utcnow() + timedelta(days=30))
    shown = client.get(f"{a}/claims/{claim_id}", headers=auth(world.tokens["admin"])).json
    assert shown["status"] == "rejected" and shown["entry_id"] is None
    assert [x["status"] for x in shown["objections"]] == ["upheld"]
    assert _entries(app, claim_id) == 0


def test_own_household_is_refused_on_every_path_and_audited(app, client, world):
    a = f"/api/v1/villages/{world.a.code}"
    # The resident of household 1 becomes a grid worker of group 1 too.
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        from points.models import RoleAssignment

        s.add(
            RoleAssignment(
                user_id=world.users["resident"].id,
                role="recorder",
                village_id=world.a.id,
                group_id=world.group1.id,
            )
        )
    token = world.tokens["resident"]
    today = utcnow().date().isoformat()
    single = _post(
        client,
        f"{a}/claims",
        token,
        json={"household_id": world.home1.id, "rule_code": "MEI-01", "occurred_on": today},
    )
    batch = _post(
        client,
        f"{a}/claims/batch",
        token,
        json={
            "title": "大扫除",
            "rule_code": "MEI-01",
            "occurred_on": today,
            "subjects": [{"household_id": world.home1.id}],
        },
    )
    for response in (single, batch):
        assert response.status_code == 403
        assert response.json["error"] == "conflict_of_interest"
        assert "回避" in response.json["message"]
    with app.extensions["points.sessionmaker"]() as s:
        refused = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "refused.conflict_of_interest")
        ).all()
    assert len(refused) == 2 and all(e.actor_id == world.users["resident"].id for e in refused)


def test_declaration_with_a_photo_only_for_those_allowed(app, client, world):
    a = f"/api/v1/villages/{world.a.code}"
    data = {
        "rule_code": "SHAN-01",
        "proposed_points": "15",
        "description": "帮邻居抢收",
        "occurred_on": utcnow().date().isoformat(),
        "photos": (io.BytesIO(jpeg()), "photo.jpg"),
    }
    r = client.post(
        f"{a}/declarations",
        headers=auth(world.tokens["resident"]),
        data=data,
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.json
    assert r.json["status"] == "pending_review" and len(r.json["evidence"]) == 1
    photo = f"{a}/claims/{r.json['id']}/evidence/{r.json['evidence'][0]['id']}"
    assert client.get(photo, headers=auth(world.tokens["resident"])).mimetype == "image/jpeg"
    assert client.get(photo, headers=auth(world.tokens["reviewer"])).status_code == 200
    assert client.get(photo, headers=auth(world.tokens["admin_b"])).status_code == 403
    assert client.get(photo).status_code == 401
    fake = dict(data, photos=(io.BytesIO(b"<?php echo 1; ?>"), "photo.jpg"))
    bad = client.post(
        f"{a}/declarations",
        headers=auth(world.tokens["resident"]),
        data=fake,
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "JPG 或 PNG" in bad.json["message"]


def test_a_batch_by_a_rule_without_notice_is_posted_at_once_and_answered_so(app, client, world):
    # A batch's claims are left out of the session when only the answer reads them; claims
    # posted at once (no review, no notice) are kept in it, so the answer shows them posted
    # and their entries are on the ledger.
    from sqlalchemy.orm import Session

    from tests.api.test_rules2_pages import adopt
    from tests.factories import make_household

    adopt(app, world)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        from points.models import Group, Village

        village, group = s.get(Village, world.a.id), s.get(Group, world.group2.id)
        homes = [world.home2.id] + [make_household(s, village, group).id for _ in range(2)]
    response = client.post(
        f"/api/v1/villages/{world.a.code}/claims/batch",
        json={
            "title": "院坝协商会",
            "rule_code": "ZZ-02",
            "occurred_on": "2026-11-20",
            "subjects": [{"household_id": h} for h in homes],
        },
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 201, response.json
    answered = response.json["claims"]
    assert [c["status"] for c in answered] == ["posted"] * 3
    assert all(c["entry_id"] is not None for c in answered)
    with Session(app.extensions["points.engine"]) as s:
        entries = s.scalars(
            select(JournalEntry.id).where(JournalEntry.id.in_([c["entry_id"] for c in answered]))
        ).all()
    assert len(entries) == 3
