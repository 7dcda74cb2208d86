"""The lean record path (issue 18, third pass) keeps what recording guarantees: the claim and its
audit row land together or not at all, the answer is what the database holds, a cap holds when
records for one household arrive at once, and on SQLite a record that is refused at sign-in or
at the village does not queue behind another writer (it reads before taking the write lock)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from points.models import AuditEvent
from points.models.claims import Claim
from tests.api.conftest import auth
from tests.api.test_read_only import Background, WriteLock
from tests.conftest import PG_URL


def _counts(app, household_id: int) -> tuple[int, int]:
    with app.extensions["points.sessionmaker"]() as s:
        claims = s.scalar(
            select(func.count()).select_from(Claim).where(Claim.household_id == household_id)
        )
        audits = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action.in_(["claim.record", "claim.batch"]))
        )
    return claims, audits


def test_the_audit_row_lands_with_the_claim_and_only_with_it(app, client, world):
    headers = auth(world.tokens["admin"])
    url = f"/api/v1/villages/{world.a.code}/claims"
    body = {"household_id": world.home2.id, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
    response = client.post(url, json=body, headers=headers)
    assert response.status_code == 201, response.json
    claim_id = response.json["id"]
    with app.extensions["points.sessionmaker"]() as s:
        event = s.execute(
            select(AuditEvent).where(
                AuditEvent.action == "claim.record", AuditEvent.object_id == str(claim_id)
            )
        ).scalar_one()
        assert event.actor_id == world.users["admin"].id and event.village_id == world.a.id
        assert event.object_type == "claim" and event.details is None
    before = _counts(app, world.home2.id)
    # Refused after the claim was decided (a date in the future) and before (an unknown rule):
    # neither a claim nor an audit row.
    for refused in ({**body, "occurred_on": "2999-01-01"}, {**body, "rule_code": "NO-SUCH"}):
        answer = client.post(url, json=refused, headers=headers)
        assert 400 <= answer.status_code < 500, answer.json
        assert _counts(app, world.home2.id) == before


def test_the_answer_is_what_the_database_holds(client, world):
    headers = auth(world.tokens["admin"])
    body = {"household_id": world.home2.id, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
    made = client.post(f"/api/v1/villages/{world.a.code}/claims", json=body, headers=headers)
    assert made.status_code == 201, made.json
    read = client.get(f"/api/v1/villages/{world.a.code}/claims/{made.json['id']}", headers=headers)
    assert read.status_code == 200, read.json
    assert made.json == read.json
    batch = {
        "title": "清扫村道",
        "rule_code": "MEI-01",
        "occurred_on": "2026-11-21",
        "subjects": [{"household_id": world.home1.id}, {"household_id": world.home2.id}],
    }
    made = client.post(f"/api/v1/villages/{world.a.code}/claims/batch", json=batch, headers=headers)
    assert made.status_code == 201, made.json
    assert [c["household_id"] for c in made.json["claims"]] == [world.home1.id, world.home2.id]
    for claim in made.json["claims"]:
        read = client.get(f"/api/v1/villages/{world.a.code}/claims/{claim['id']}", headers=headers)
        assert read.json == claim


def test_a_cap_holds_when_records_for_one_household_arrive_at_once(app, world):
    # MEI-01: 5 points, at most 20 a month per household.
    headers = auth(world.tokens["admin"])
    url = f"/api/v1/villages/{world.a.code}/claims"
    body = {"household_id": world.home2.id, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
    answers: list = []
    start = threading.Barrier(8)

    def record():
        client = app.test_client()
        start.wait(timeout=30)
        answers.append(client.post(url, json=body, headers=headers))

    workers = [threading.Thread(target=record, daemon=True) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(answers) == 8, "a record did not answer"
    assert all(a.status_code in (201, 409, 422, 503) for a in answers), [a.json for a in answers]
    with app.extensions["points.sessionmaker"]() as s:
        points = s.scalars(
            select(Claim.points).where(
                Claim.household_id == world.home2.id, Claim.status != "rejected"
            )
        ).all()
    assert sum(abs(p) for p in points) <= 20
    assert sum(a.json["points"] for a in answers if a.status_code == 201) == sum(points)


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's write lock; PostgreSQL has none")
def test_a_record_refused_at_the_door_does_not_wait_for_a_writer(app, world, db_url):
    body = {"household_id": world.home2.id, "rule_code": "MEI-01", "occurred_on": "2026-11-20"}
    client = app.test_client()
    with WriteLock(db_url):
        attempts = [
            # Signed out (a token nobody holds), a village the admin has no role in, no village.
            ("village-a", auth("not-a-token"), 401),
            ("village-b", auth(world.tokens["admin"]), 403),
            ("no-such-village", auth(world.tokens["admin"]), 404),
        ]
        for code, headers, status in attempts:
            answer = Background(
                lambda code=code, headers=headers: client.post(
                    f"/api/v1/villages/{code}/claims", json=body, headers=headers
                )
            ).wait(10)
            assert answer is not None, f"{code}: the refusal waited for the writer"
            assert answer.status_code == status, answer.json
        # An accepted record does queue behind the writer (and is not refused).
        write = Background(
            lambda: app.test_client().post(
                f"/api/v1/villages/{world.a.code}/claims",
                json=body,
                headers=auth(world.tokens["admin"]),
            )
        )
        assert write.wait(1.5) is None
    done = write.wait(20)
    assert done is not None and done.status_code == 201, done and done.json


def test_an_uncapped_rule_reads_the_household_with_the_rule_and_still_refuses_a_stranger(
    app, client, world
):
    # ZZ-09 has no caps: the household comes in the rule's own statement. A household of
    # village B named in village A is not found (404), and nothing is written.
    headers = auth(world.tokens["admin"])
    url = f"/api/v1/villages/{world.a.code}/claims"
    body = {"rule_code": "ZZ-09", "occurred_on": "2026-11-20"}
    before = _counts(app, world.home_b.id)
    refused = client.post(url, json={**body, "household_id": world.home_b.id}, headers=headers)
    assert refused.status_code == 404, refused.json
    assert refused.json["message"] == "找不到该农户"
    assert _counts(app, world.home_b.id) == before
    made = client.post(url, json={**body, "household_id": world.home2.id}, headers=headers)
    assert made.status_code == 201, made.json
    assert made.json["household_id"] == world.home2.id and made.json["points"] == 1
    with app.extensions["points.sessionmaker"]() as s:
        event = s.execute(
            select(AuditEvent).where(
                AuditEvent.action == "claim.record",
                AuditEvent.object_id == str(made.json["id"]),
            )
        ).scalar_one()
    # The summary is written from the decided claim, in the claim's own statement on PostgreSQL.
    assert event.summary == f"登记 +1 分（户 #{world.home2.id}），附照片 0 张"
    assert event.village_id == world.a.id and event.remote_addr == "127.0.0.1"


def test_a_token_and_a_village_read_together_refuse_in_order(client, world):
    # Sign-in and the village are one statement: a bad token is still 401 before an unknown
    # village's 404, a good token at an unknown village is 404, at another village 403.
    body = {"household_id": world.home2.id, "rule_code": "ZZ-09", "occurred_on": "2026-11-20"}
    bad = auth("no-such-token")
    answer = client.post("/api/v1/villages/nowhere/claims", json=body, headers=bad)
    assert answer.status_code == 401, answer.json
    good = auth(world.tokens["admin"])
    answer = client.post("/api/v1/villages/nowhere/claims", json=body, headers=good)
    assert answer.status_code == 404 and "nowhere" in answer.json["message"], answer.json
    answer = client.post(f"/api/v1/villages/{world.b.code}/claims", json=body, headers=good)
    assert answer.status_code == 403, answer.json
