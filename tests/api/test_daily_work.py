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
from tests.api.conftest import PASSWORD, auth


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(client, **creds):
    token = _token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, **creds})


def _jpeg(colour="green"):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "JPEG")
    return buf.getvalue()


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
        data={"data": json.dumps(body), "photos": (io.BytesIO(_jpeg()), "a.jpg")},
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
        data={"data": "{not json", "photos": (io.BytesIO(_jpeg()), "a.jpg")},
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
            "photos": [(io.BytesIO(_jpeg()), "sign-in.jpg"), (io.BytesIO(_jpeg("red")), "b.jpg")],
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
