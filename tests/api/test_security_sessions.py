"""Sessions and sign-in under attack: open redirects, cookie settings, copied cookies after
sign-out, PIN resets, PIN guessing across workers, weak PINs, proxies and HTTPS."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from points.auth import weak_pin_reason
from points.models import AuditEvent, User
from tests.api.conftest import PASSWORD, auth, make_app

RESIDENT = {"phone": "13800001111", "pin": "123456"}


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(client, path="/login", **creds):
    token = _csrf(client.get("/login").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **creds})


# --- 1. open redirect --------------------------------------------------------------------------

HOSTILE_NEXT = [
    "/%09/evil.example",
    "/%0a/evil.example",
    "//evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/ /evil.example",
]


@pytest.mark.parametrize("hostile", HOSTILE_NEXT)
def test_sign_in_never_redirects_off_site(app, world, hostile):
    response = _login(
        app.test_client(), f"/login?next={hostile}", username="u-admin", password=PASSWORD
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/v/{world.a.code}/"


@pytest.mark.parametrize("hostile", HOSTILE_NEXT)
def test_big_type_never_redirects_off_site(client, hostile):
    response = client.get(f"/big-type?next={hostile}")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_same_site_next_is_kept(app, world):
    wanted = f"/public/{world.a.code}/notices?x=1"
    signed = _login(
        app.test_client(), f"/login?next={quote(wanted)}", username="u-admin", password=PASSWORD
    )
    assert signed.headers["Location"] == wanted
    toggled = app.test_client().get(f"/big-type?next={quote(wanted)}")
    assert toggled.headers["Location"] == wanted


# --- 2. cookie settings and server-side sign-out ------------------------------------------------


def test_the_session_cookie_is_lax_http_only_and_lives_12_hours(app, world):
    response = _login(app.test_client(), username="u-admin", password=PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Secure" not in cookie
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=12)
    assert re.search(r"Max-Age=43200\b", cookie) or "Expires=" in cookie


def test_the_caller_and_the_environment_still_choose(db_url, monkeypatch):
    chosen = make_app(db_url, SESSION_COOKIE_SAMESITE="Strict")
    assert chosen.config["SESSION_COOKIE_SAMESITE"] == "Strict"
    monkeypatch.setenv("POINTS_SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("POINTS_PERMANENT_SESSION_LIFETIME", "3600")
    env = make_app(db_url)
    assert env.config["SESSION_COOKIE_SECURE"] is True
    assert env.config["PERMANENT_SESSION_LIFETIME"] == 3600


def test_https_deployments_get_a_secure_cookie(db_url, world, monkeypatch):
    monkeypatch.setenv("POINTS_SESSION_COOKIE_SECURE", "true")
    app = make_app(db_url)
    response = _login(app.test_client(), username="u-admin", password=PASSWORD)
    assert "Secure" in response.headers["Set-Cookie"]


def _copy_session(source, target) -> None:
    target.set_cookie("session", source.get_cookie("session").value)


def test_a_copied_cookie_dies_with_sign_out(app, world):
    phone = app.test_client()
    _login(phone, username="u-admin", password=PASSWORD)
    thief = app.test_client()
    _copy_session(phone, thief)
    home = f"/v/{world.a.code}/"
    assert thief.get(home).status_code == 200

    page = phone.get(home).get_data(as_text=True)
    out = phone.post("/logout", data={"csrf_token": _csrf(page)})
    assert out.status_code == 302

    stolen = thief.get(home)
    assert stolen.status_code == 302 and stolen.headers["Location"].startswith("/login")
    # Signing in again starts a fresh session that works.
    _login(phone, username="u-admin", password=PASSWORD)
    assert phone.get(home).status_code == 200


def test_a_disabled_account_is_out_at_once(app, world):
    browser = app.test_client()
    _login(browser, username="u-admin", password=PASSWORD)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        s.get(User, world.users["admin"].id).active = False
    assert browser.get(f"/v/{world.a.code}/").status_code == 302
    assert app.test_client().get("/api/v1/me", headers=auth(world.tokens["admin"])).status_code == (
        401
    )


# --- 3. a PIN reset revokes -------------------------------------------------------------------


def test_a_pin_reset_signs_the_resident_out_everywhere(app, world):
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json=RESIDENT).json["token"]
    browser = app.test_client()
    assert _login(browser, **RESIDENT).status_code == 302
    mine = f"/v/{world.a.code}/my/"
    assert browser.get(mine).status_code == 200
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200

    resident_id = world.users["resident"].resident_id
    reset = client.post(
        f"/api/v1/villages/{world.a.code}/residents/{resident_id}/pin",
        json={"pin": "730915"},
        headers=auth(world.tokens["admin"]),
    )
    assert reset.status_code == 204

    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401
    assert client.get("/api/v1/me", headers=auth(world.tokens["resident"])).status_code == 401
    assert browser.get(mine).status_code == 302
    assert client.post("/api/v1/auth/token", json=RESIDENT).status_code == 401
    fresh = client.post("/api/v1/auth/token", json={**RESIDENT, "pin": "730915"})
    assert fresh.status_code == 201


# --- 4. per-account lockout, across workers ----------------------------------------------------


def test_pin_guessing_locks_the_account_across_workers(db_url, app, world):
    # Two app instances on one database stand for two gunicorn workers (or two servers): the
    # guesser alternates between them and still gets five tries.
    workers = [app.test_client(), make_app(db_url).test_client()]
    for n in range(5):
        wrong = workers[n % 2].post("/api/v1/auth/token", json={**RESIDENT, "pin": f"90{n}417"})
        assert wrong.status_code == (401 if n < 4 else 429), wrong.json
    locked = workers[1].post("/api/v1/auth/token", json=RESIDENT)  # even the right PIN
    assert locked.status_code == 429 and locked.json["error"] == "account_locked"
    assert locked.json["message"] == "输错次数太多，请 15 分钟后再试；忘记 PIN 请到村委会重置"
    page = _login(workers[0], **RESIDENT)
    assert page.status_code == 429
    assert "输错次数太多，请 15 分钟后再试" in page.get_data(as_text=True)

    # Staff accounts other than the locked one are untouched.
    staff = {"username": "u-clerk", "password": PASSWORD}
    assert workers[0].post("/api/v1/auth/token", json=staff).status_code == 201

    with app.extensions["points.sessionmaker"]() as s:
        actions = s.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == str(world.users["resident"].id))
        ).all()
    assert "auth.locked" in actions


def test_an_admin_unlocks_and_it_is_audited(app, world):
    client = app.test_client()
    for n in range(5):
        client.post("/api/v1/auth/token", json={**RESIDENT, "pin": f"90{n}417"})
    assert client.post("/api/v1/auth/token", json=RESIDENT).status_code == 429
    user_id = world.users["resident"].id
    users = client.get(
        f"/api/v1/villages/{world.a.code}/users", headers=auth(world.tokens["admin"])
    ).json
    assert next(u for u in users if u["id"] == user_id)["locked_until"] is not None

    url = f"/api/v1/villages/{world.a.code}/users/{user_id}/unlock"
    assert client.post(url, headers=auth(world.tokens["clerk"])).status_code == 403
    other = f"/api/v1/villages/{world.b.code}/users/{user_id}/unlock"
    assert client.post(other, headers=auth(world.tokens["admin_b"])).status_code == 404
    done = client.post(url, headers=auth(world.tokens["admin"]))
    assert done.status_code == 200 and done.json["locked_until"] is None
    assert client.post("/api/v1/auth/token", json=RESIDENT).status_code == 201

    events = client.get(
        f"/api/v1/villages/{world.a.code}/audit?action=user.unlock",
        headers=auth(world.tokens["admin"]),
    ).json
    assert len(events) == 1 and "解除" in events[0]["summary"]


def test_a_right_pin_before_the_limit_clears_the_count(app, world):
    client = app.test_client()
    for _round in range(3):
        for n in range(4):
            client.post("/api/v1/auth/token", json={**RESIDENT, "pin": f"90{n}417"})
        assert client.post("/api/v1/auth/token", json=RESIDENT).status_code == 201


# --- 5. weak PINs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pin",
    [
        "000000",
        "123456",
        "111111",
        "654321",
        "121212",
        "123123",
        "112233",
        "888888",
        "890123",
        "147258",
        "345678",
    ],
)
def test_weak_pins_are_refused(client, world, pin):
    resident_id = world.users["resident"].resident_id
    response = client.post(
        f"/api/v1/villages/{world.a.code}/residents/{resident_id}/pin",
        json={"pin": pin},
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 422 and response.json["error"] == "weak_pin"
    assert "PIN 码" in response.json["message"] and response.json["errors"]["pin"]
    # The old PIN still works: nothing was changed.
    assert client.post("/api/v1/auth/token", json=RESIDENT).status_code == 201


def test_the_phone_number_is_not_a_pin(client, world):
    resident_id = world.users["resident"].resident_id
    response = client.post(
        f"/api/v1/villages/{world.a.code}/residents/{resident_id}/pin",
        json={"pin": "138000"},
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 422 and "手机号" in response.json["errors"]["pin"][0]


def test_ordinary_pins_pass():
    for pin in ("730915", "402968", "815027", "190736"):
        assert weak_pin_reason(pin, phone="13800001111") is None, pin


# --- 6. behind a reverse proxy --------------------------------------------------------------


def _audited_address(app, world) -> str:
    with app.extensions["points.sessionmaker"]() as s:
        return s.scalars(
            select(AuditEvent.remote_addr)
            .where(AuditEvent.action == "auth.signin.page")
            .order_by(AuditEvent.id.desc())
        ).first()


def test_behind_a_proxy_the_client_address_and_https_are_trusted_only_when_configured(
    db_url, world
):
    forwarded = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
    direct = make_app(db_url)
    client = direct.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    client.post(
        "/login",
        data={"csrf_token": token, "username": "u-admin", "password": PASSWORD},
        headers=forwarded,
    )
    assert _audited_address(direct, world) == "127.0.0.1"  # a spoofed header is ignored

    proxied = make_app(db_url, PROXY_FIX_HOPS=1)
    client = proxied.test_client()
    token = _csrf(client.get("/login", headers=forwarded).get_data(as_text=True))
    response = client.post(
        "/login?next=/me",
        data={"csrf_token": token, "username": "u-admin", "password": PASSWORD},
        headers=forwarded,
    )
    assert response.status_code == 302
    assert _audited_address(proxied, world) == "10.1.2.3"
    assert client.get("/big-type?next=/x", headers=forwarded).headers["Location"] == "/x"
