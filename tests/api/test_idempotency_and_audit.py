"""Idempotency-Key on writes, and the audit trail every write leaves."""

import threading

from sqlalchemy import func, select

from points.models import AuditEvent, Group
from tests.api.conftest import auth


def _groups(app):
    with app.extensions["points.sessionmaker"]() as s:
        return s.scalar(select(func.count()).select_from(Group))


def test_a_repeated_write_returns_the_first_answer_once(app, client, world):
    headers = auth(world.tokens["admin"], **{"Idempotency-Key": "create-group-7"})
    url = f"/api/v1/villages/{world.a.code}/groups"
    before = _groups(app)
    first = client.post(url, json={"name": "七组"}, headers=headers)
    again = client.post(url, json={"name": "七组"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replay"] == "true"
    assert _groups(app) == before + 1


def test_the_same_key_with_another_body_is_a_conflict(app, client, world):
    headers = auth(world.tokens["admin"], **{"Idempotency-Key": "k-1"})
    url = f"/api/v1/villages/{world.a.code}/groups"
    assert client.post(url, json={"name": "八组"}, headers=headers).status_code == 201
    other = client.post(url, json={"name": "九组"}, headers=headers)
    assert other.status_code == 409 and other.json["error"] == "duplicate_request"
    assert "不同" in other.json["message"]


def test_a_failed_write_is_not_remembered(app, client, world):
    headers = auth(world.tokens["admin"], **{"Idempotency-Key": "k-2"})
    url = f"/api/v1/villages/{world.a.code}/groups"
    assert client.post(url, json={"name": ""}, headers=headers).status_code == 422
    # Nothing was kept for the failure, so the corrected request may reuse the key.
    fixed = client.post(url, json={"name": "十组"}, headers=headers)
    assert fixed.status_code == 201
    assert client.post(url, json={"name": "十组"}, headers=headers).json == fixed.json


def test_concurrent_requests_with_one_key_create_one_group(app, world):
    url = f"/api/v1/villages/{world.a.code}/groups"
    headers = auth(world.tokens["admin"], **{"Idempotency-Key": "burst"})
    before = _groups(app)
    barrier, results = threading.Barrier(8), []

    def send():
        client = app.test_client()
        barrier.wait()
        r = client.post(url, json={"name": "并发组"}, headers=headers)
        results.append((r.status_code, r.json.get("id")))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _groups(app) == before + 1
    created = [r for r in results if r[0] == 201]
    assert created and len({i for _, i in created}) == 1
    # Losers either replayed the winner's answer or were told the name exists; never a 500.
    assert all(code in (201, 409) for code, _ in results), results


def test_every_write_is_audited_with_actor_and_address(app, client, world):
    client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        json={"name": "审计组"},
        headers=auth(world.tokens["admin"]),
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    events = client.get(
        f"/api/v1/villages/{world.a.code}/audit", headers=auth(world.tokens["admin"])
    ).json
    event = next(e for e in events if e["action"] == "group.create")
    assert event["actor_id"] == world.users["admin"].id
    assert event["remote_addr"] == "10.1.2.3" and "审计组" in event["summary"]
    with app.extensions["points.sessionmaker"]() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.village_id == world.b.id)
            )
            == 0
        )


def test_admins_export_the_audit_log(client, world):
    client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        json={"name": "导出组"},
        headers=auth(world.tokens["admin"]),
    )
    response = client.get(
        f"/api/v1/villages/{world.a.code}/audit/export", headers=auth(world.tokens["admin"])
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff编号") and "新建小组 导出组" in text
