"""The record page's offline queue reaching the server (issue 20): the page-session endpoint it
syncs through answers JSON, records a resent item once (even when the browser picks another
multipart boundary), and refuses, with a stable code and a Chinese message, a record whose rule
or household changed after it was made on the phone. The API takes the same check."""

from __future__ import annotations

import io
import json
import re
from datetime import date

from sqlalchemy import func, select

from points.db import utcnow
from points.models import Claim, Household, Scheme
from points.periods import local_date
from tests.api.conftest import CLAIM_RULES, PASSWORD, auth
from tests.factories import adopt_catalog


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _recorder_page(client):
    """Sign the recorder in; return the record page's CSRF token and its rule ids by code."""
    token = _csrf(client.get("/login").get_data(as_text=True))
    client.post(
        "/login", data={"csrf_token": token, "username": "u-recorder", "password": PASSWORD}
    )
    page = client.get("/v/village-a/record").get_data(as_text=True)
    rule_ids = dict(re.findall(r'<option value="([A-Z]+-\d+)" data-rule-id="(\d+)"', page))
    return _csrf(page), {code: int(i) for code, i in rule_ids.items()}


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(buf, "JPEG")
    return buf.getvalue()


def _send(client, csrf, key, body, photo=False):
    data = {"data": json.dumps(body)}
    if photo:
        data["photos"] = (io.BytesIO(_jpeg()), "photo-1.jpg")
    return client.post(
        "/v/village-a/record/queued",
        data=data,
        content_type="multipart/form-data",
        headers={"Idempotency-Key": key, "X-CSRF-Token": csrf},
    )


def _item(world, rule_ids, code="MEI-01", **extra):
    return {
        "scheme": "household",
        "household_id": world.home1.id,
        "rule_code": code,
        "occurred_on": local_date(utcnow()).isoformat(),
        "expected_rule_id": rule_ids[code],
        "expected_group_id": world.group1.id,
        **extra,
    }


def _claims(app) -> int:
    with app.extensions["points.sessionmaker"]() as s:
        return s.execute(select(func.count()).select_from(Claim)).scalar_one()


def test_page_sends_the_rule_and_grid_each_record_is_made_against(app, client, world):
    _, rule_ids = _recorder_page(client)
    page = client.get("/v/village-a/record").get_data(as_text=True)
    assert {"MEI-01", "SHAN-01", "FZ-51"} <= set(rule_ids)
    assert f'data-group="{world.group1.id}"' in page
    assert 'rel="manifest"' in page and "offline.js" in page
    manifest = client.get("/v/village-a/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    assert manifest.json["start_url"] == "/v/village-a/record"
    assert manifest.json["scope"] == "/v/village-a/"
    worker = client.get("/sw.js")
    assert worker.status_code == 200 and b"points-record-v1" in worker.data
    assert worker.headers["Cache-Control"] == "no-cache"


def test_a_resent_item_is_recorded_once_even_with_another_boundary(app, client, world):
    csrf, rule_ids = _recorder_page(client)
    body = _item(world, rule_ids, "SHAN-01", proposed_points=10, description="救起落水儿童")
    first = _send(client, csrf, "rec-1", body, photo=True)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.json["status"] == "pending_review" and len(first.json["evidence"]) == 1
    # The test client picks a new random boundary per request, as a browser does per FormData.
    again = _send(client, csrf, "rec-1", body, photo=True)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.json["id"] == first.json["id"]
    assert _claims(app) == 1
    # The same key for something else is refused, never recorded.
    other = _send(client, csrf, "rec-1", {**body, "description": "另一件事"}, photo=True)
    assert other.status_code == 409 and other.json["error"] == "duplicate_request"
    assert _claims(app) == 1


def test_a_rule_changed_since_is_refused_with_a_reason(app, client, world):
    csrf, rule_ids = _recorder_page(client)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        scheme = s.execute(
            select(Scheme).where(Scheme.village_id == world.a.id, Scheme.code == "household")
        ).scalar_one()
        # The new version changes 庭院整洁 and drops 赌博 (FZ-51).
        changed = [
            dict(r, points=8) if r["code"] == "MEI-01" else r
            for r in CLAIM_RULES
            if r["code"] != "FZ-51"
        ]
        adopt_catalog(s, scheme, changed, now=utcnow(), adopted_on=local_date(utcnow()))
    response = _send(client, csrf, "rec-rule", _item(world, rule_ids))
    assert response.status_code == 409
    assert response.json["error"] == "rule_changed"
    assert "积分标准已更新" in response.json["message"] and "庭院整洁" in response.json["message"]
    # An item the new version dropped is refused the same way, not as an unknown code.
    gone = _send(client, csrf, "rec-gone", _item(world, rule_ids, "FZ-51", description="赌博"))
    assert gone.status_code == 409 and gone.json["error"] == "rule_changed"
    assert "已取消" in gone.json["message"]
    assert _claims(app) == 0


def test_a_household_moved_or_gone_since_is_refused(app, client, world):
    csrf, rule_ids = _recorder_page(client)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        s.get(Household, world.home1.id).group_id = world.group2.id
    moved = _send(client, csrf, "rec-moved", _item(world, rule_ids))
    assert moved.status_code == 409 and moved.json["error"] == "household_moved"
    assert "二组" in moved.json["message"]
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        home = s.get(Household, world.home1.id)
        home.group_id, home.active = world.group1.id, False
    gone = _send(client, csrf, "rec-gone", _item(world, rule_ids))
    assert gone.status_code == 409 and gone.json["error"] == "household_gone"
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        home = s.get(Household, world.home1.id)
        home.active = True
        home.members[0].active = False
    left = _send(client, csrf, "rec-left", _item(world, rule_ids, resident_id=home.members[0].id))
    assert left.status_code == 409 and left.json["error"] == "member_gone"
    assert _claims(app) == 0
    # Nothing changed: the same record goes through.
    ok = _send(client, csrf, "rec-ok", _item(world, rule_ids))
    assert ok.status_code == 201 and ok.json["points"] == 5


def test_signed_out_or_expired_page_is_not_recorded(app, client, world):
    csrf, rule_ids = _recorder_page(client)
    body = _item(world, rule_ids)
    stale = _send(client, "not-the-token", "rec-x", body)
    assert stale.status_code == 400  # the page's CSRF check: the queue keeps the item waiting
    client.post("/logout", data={"csrf_token": csrf})
    out = _send(client, csrf, "rec-x", body)
    assert out.status_code in (400, 401)
    assert _claims(app) == 0
    bad = client.post("/v/village-a/record/queued", data={"data": "{"}, headers={})
    assert bad.status_code == 400


def test_refusals_are_the_envelope_in_chinese(app, client, world):
    csrf, rule_ids = _recorder_page(client)
    bad = _send(client, csrf, "rec-bad", {**_item(world, rule_ids), "quantity": "x"})
    assert bad.status_code == 422 and bad.json["error"] == "invalid_input"
    assert "quantity" in bad.json["errors"]
    not_mine = _send(client, csrf, "rec-nm", _item(world, rule_ids, household_id=world.home2.id))
    assert not_mine.status_code == 409 and not_mine.json["error"] == "household_moved"
    future = _send(client, csrf, "rec-f", _item(world, rule_ids, occurred_on="2999-01-01"))
    assert future.status_code == 422 and "不能晚于今天" in future.json["message"]


def test_the_api_refuses_a_changed_rule_too(app, client, world):
    _, rule_ids = _recorder_page(client)
    body = _item(world, rule_ids)
    body.pop("scheme")
    body["expected_rule_id"] = rule_ids["SHAN-01"]
    response = client.post(
        "/api/v1/villages/village-a/claims", json=body, headers=auth(world.tokens["recorder"])
    )
    assert response.status_code == 409 and response.json["error"] == "rule_changed"
    lone = client.post(
        "/api/v1/villages/village-a/claims",
        json={**body, "expected_rule_id": None},
        headers=auth(world.tokens["recorder"]),
    )
    assert lone.status_code == 422
    assert date.fromisoformat(body["occurred_on"])
