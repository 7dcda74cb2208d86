"""What every answer carries and how hostile input and a failing database are answered:
security headers, named photo downloads, 4xx (never 500) for numbers and months that cannot
be, 503 `busy` while PostgreSQL restarts, and a clerk limited to what the counter needs."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from tests.api.claims_world import evidence_of, make_claim
from tests.api.conftest import PASSWORD, auth, make_app
from tests.api.test_security_sessions import _csrf

HUGE = "99999999999999999999"  # beyond 64 bits
ENVELOPE = {"code", "status", "error", "message"}


def _page_login(app, username):
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"csrf_token": token, "username": username, "password": PASSWORD})
    return client


# --- 8. headers -----------------------------------------------------------------------------


def test_every_answer_forbids_framing_and_sniffing(app, client, world):
    answers = [
        client.get("/"),
        client.get("/login"),
        client.get(f"/public/{world.a.code}/notices"),
        client.get("/api/v1/me"),  # a 401 envelope
        client.get(f"/api/v1/public/{world.a.code}/boards"),
        client.get("/no-such-page"),
    ]
    for response in answers:
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_an_evidence_photo_is_a_named_inline_image_never_sniffed(app, client, world):
    claim_id = make_claim(app, world, "pending_review", evidence=True)
    photo_id = evidence_of(app, claim_id)
    url = f"/api/v1/villages/{world.a.code}/claims/{claim_id}/evidence/{photo_id}"
    response = client.get(url, headers=auth(world.tokens["reviewer"]))
    assert response.status_code == 200 and response.mimetype in ("image/jpeg", "image/png")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename=")
    assert f"claim-{claim_id}-photo-{photo_id}" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- 11. hostile numbers and months -------------------------------------------------------------


def _hostile_api(world):
    a = f"/api/v1/villages/{world.a.code}"
    return [
        ("anon", f"/api/v1/public/{world.a.code}/boards/{HUGE}", 404),
        ("anon", f"/api/v1/public/{world.a.code}/boards/{HUGE}/poster.pdf", 404),
        ("anon", f"/api/v1/public/{world.a.code}/boards/2147483648", 404),
        ("admin", f"{a}/households/{HUGE}", 404),
        ("admin", f"{a}/households/{HUGE}/balance", 404),
        ("admin", f"{a}/claims/{HUGE}", 404),
        ("admin", f"{a}/households?group_id={HUGE}", 422),
        ("admin", f"{a}/households?group_id=-{HUGE}", 422),
        ("admin", f"{a}/audit?before_id={HUGE}", 422),
        ("admin", f"{a}/anomalies?month=2026-13", 422),
        ("admin", f"{a}/anomalies?month=2026-00", 422),
        ("admin", f"{a}/anomalies?month=0000-01", 422),
        ("admin", f"{a}/households/{world.home1.id}/statement?period=2026-13", 422),
        ("supervisor", f"/api/v1/towns/{world.a.town}/summary?month=2026-99", 422),
        ("supervisor", f"/api/v1/towns/{world.a.town}/summary?month=２０２６-１１", 422),
    ]


def test_hostile_numbers_and_months_are_4xx_envelopes(app, world):
    client = app.test_client()
    for role, url, status in _hostile_api(world):
        headers = auth(world.tokens[role]) if role != "anon" else {}
        response = client.get(url, headers=headers)
        assert response.status_code == status, (url, response.status_code, response.data[:300])
        assert set(response.json) >= ENVELOPE, url


def test_a_huge_number_in_a_body_is_a_field_error(client, world):
    response = client.post(
        f"/api/v1/villages/{world.a.code}/claims",
        json={
            "household_id": int(HUGE),
            "rule_code": "MEI-01",
            "occurred_on": "2026-11-20",
        },
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 422
    assert response.json["errors"]["household_id"] == ["数值超出允许范围"]


def test_hostile_numbers_and_months_on_pages_are_chinese_4xx_pages(app, world):
    admin = _page_login(app, "u-admin")
    supervisor = _page_login(app, "u-supervisor")
    cases = [
        (admin, f"/v/{world.a.code}/anomalies?month=2026-13", 400),
        (admin, f"/v/{world.a.code}/boards?board={HUGE}", 200),
        (supervisor, f"/town/{world.a.town}?month=9999-99", 400),
        (app.test_client(), f"/public/{world.a.code}/board/2026-11?id={HUGE}", 404),
        (app.test_client(), f"/public/{world.a.code}/board/{HUGE}", 404),
        (admin, f"/v/{world.a.code}/counter/receipts/{HUGE}", 404),
    ]
    for client, url, status in cases:
        response = client.get(url)
        assert response.status_code == status, (url, response.status_code)
        if status >= 400:
            assert "</html>" in response.get_data(as_text=True).lower(), url


# --- 12. a clerk reads what the counter needs ------------------------------------------------


def test_a_clerk_reads_balances_and_redemptions_not_full_statements(client, world):
    a = f"/api/v1/villages/{world.a.code}/households/{world.home1.id}"
    clerk = auth(world.tokens["clerk"])
    statement = client.get(f"{a}/statement", headers=clerk)
    assert statement.status_code == 403
    assert statement.json["message"] == "收银员只能查看农户的余额和兑换记录，不能查看积分明细"
    assert client.get(f"{a}/balance", headers=clerk).json["available"] == 30
    assert client.get(f"{a}/redemptions", headers=clerk).status_code == 200
    schemes = client.get(f"/api/v1/villages/{world.a.code}/schemes", headers=clerk).json
    assert "redemption_threshold" in schemes[0]
    for who in ("admin", "reviewer", "resident"):
        full = client.get(f"{a}/statement", headers=auth(world.tokens[who]))
        assert full.status_code == 200 and full.json["entries"][0]["memo"] == "打扫卫生"


# --- 9. a database that goes away ------------------------------------------------------------


def test_an_unreachable_database_is_503_busy_not_500(tmp_path):
    # Nothing listens on port 1: the driver's "connection refused", as while PostgreSQL restarts.
    app = make_app("postgresql://root@127.0.0.1:1/test", SECRET_KEY="x", PROPAGATE_EXCEPTIONS=False)
    app.testing = False  # answer like production: handlers, not tracebacks
    client = app.test_client()
    api = client.get("/api/v1/me", headers=auth("some-token"))
    assert api.status_code == 503 and api.headers["Retry-After"]
    assert api.json["error"] == "busy" and api.json["message"] == "系统繁忙，请稍后重试"
    page = client.get("/")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "系统繁忙" in page.get_data(as_text=True)
    assert client.get("/healthz").status_code == 503


@pytest.fixture
def pg(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: terminates the app's server connections")
    engine = create_engine("postgresql+psycopg://" + db_url.split("://", 1)[1])
    yield engine
    engine.dispose()


def _app_backends(conn, db_name):
    return (
        conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
            {"d": db_name},
        )
        .scalars()
        .all()
    )


def test_a_connection_killed_mid_request_is_503_then_the_app_recovers(app, world, pg):
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    db_name = pg.url.database
    admin = auth(world.tokens["admin"])
    client = app.test_client()
    url = f"/api/v1/villages/{world.a.code}"
    result = {}

    # Hold the village's row so that the request's UPDATE waits: it is mid-transaction when
    # its server process is terminated (what a PostgreSQL restart does to open connections).
    with pg.connect() as holder:
        me = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
        holder.execute(text("SELECT id FROM villages WHERE id = :v FOR UPDATE"), {"v": world.a.id})

        def patch():
            result["r"] = client.patch(url, json={"privacy_mode": "named"}, headers=admin)

        thread = threading.Thread(target=patch)
        thread.start()
        waiting = []
        deadline = time.monotonic() + 20
        while not waiting and time.monotonic() < deadline:
            with pg.connect() as probe:
                waiting = (
                    probe.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE datname = :d "
                            "AND wait_event_type = 'Lock' AND pid <> :me"
                        ),
                        {"d": db_name, "me": me},
                    )
                    .scalars()
                    .all()
                )
            time.sleep(0.05)
        assert waiting, "the request never reached the lock"
        with pg.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": waiting[0]})
        thread.join(timeout=30)
        holder.rollback()
    assert not thread.is_alive()
    response = result["r"]
    assert response.status_code == 503, response.data[:500]
    assert response.json["error"] == "busy" and response.headers["Retry-After"]

    # Kill every connection the app keeps in its pool, idle ones too: the next requests find
    # them dead and reconnect instead of failing.
    with pg.connect() as killer:
        for pid in _app_backends(killer, db_name):
            killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    again = client.patch(url, json={"privacy_mode": "named"}, headers=admin)
    assert again.status_code == 200 and again.json["privacy_mode"] == "named"
    assert client.get("/").status_code == 200
