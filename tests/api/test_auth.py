"""Sign-in, tokens and rate limits, as an API client experiences them."""

from api.web.identity import _digest
from points.models import ApiToken
from tests.api.conftest import PASSWORD, auth, build_world, make_app


def test_staff_and_resident_sign_in_and_see_who_they_are(client, world):
    me = client.get("/api/v1/me", headers=auth(world.tokens["recorder"])).json
    assert me["grants"] == [
        {"role": "recorder", "village_id": world.a.id, "group_id": world.group1.id, "town": None}
    ]
    me = client.get("/api/v1/me", headers=auth(world.tokens["resident"])).json
    assert me["household_id"] == world.home1.id


def test_wrong_password_and_unknown_user_look_the_same(client, world):
    wrong = client.post("/api/v1/auth/token", json={"username": "u-admin", "password": "nope"})
    unknown = client.post("/api/v1/auth/token", json={"username": "ghost", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json == unknown.json
    assert (
        wrong.json["error"] == "invalid_credentials" and wrong.json["message"] == "账号或密码错误"
    )


def test_password_never_comes_back_and_token_is_stored_hashed(app, client, world):
    response = client.post("/api/v1/auth/token", json={"username": "u-admin", "password": PASSWORD})
    assert PASSWORD not in response.get_data(as_text=True)
    raw = response.json["token"]
    with app.extensions["points.sessionmaker"]() as s:
        stored = [t.token_hash for t in s.query(ApiToken).all()]
    assert raw not in stored and _digest(raw) in stored


def test_revoked_token_stops_working(client, world):
    token = world.tokens["clerk"]
    assert client.delete("/api/v1/auth/token", headers=auth(token)).status_code == 204
    response = client.get("/api/v1/me", headers=auth(token))
    assert response.status_code == 401 and response.json["error"] == "unauthenticated"


def test_expired_token_is_refused(db_url):
    app = make_app(db_url, TOKEN_TTL_HOURS=-1)
    world = build_world(app)
    response = app.test_client().get("/api/v1/me", headers=auth(world.tokens["admin"]))
    assert response.status_code == 401


def test_sign_in_is_rate_limited(db_url):
    app = make_app(db_url, SIGNIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    codes = [
        client.post("/api/v1/auth/token", json={"username": "x", "password": "y"}).status_code
        for _ in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]
    last = client.post("/api/v1/auth/token", json={"username": "x", "password": "y"})
    assert last.json["error"] == "too_many_requests" and "稍后" in last.json["message"]


def test_both_or_neither_credential_kind_is_refused(client, world):
    both = client.post(
        "/api/v1/auth/token",
        json={"username": "u-admin", "password": PASSWORD, "phone": "13800001111", "pin": "123456"},
    )
    assert both.status_code == 422 and both.json["error"] == "invalid_input"
