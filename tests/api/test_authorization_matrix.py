"""Every API route × every role × own/other village (and own/other group for recorders).

The expected statuses are written here by hand, not derived from the code: a route that is
added without a row here fails `test_every_route_has_a_row`.
"""

from __future__ import annotations

import io
import itertools

import pytest
from openpyxl import Workbook

from tests.api.conftest import auth, build_world, make_app

ROLES = ("anon", "admin", "reviewer", "recorder", "clerk", "resident", "supervisor")
STAFF = {"admin", "reviewer", "recorder", "clerk"}
_n = itertools.count(1)

# Routes that are not village data: documentation and the public sign-in.
NOT_IN_MATRIX = {
    ("/api/v1/openapi.json", "GET"),
    ("/api/v1/docs", "GET"),
    ("/api/v1/docs/<path:filename>", "GET"),
    ("/api/v1/docs-assets/<path:filename>", "GET"),
    ("/api/v1/auth/token", "POST"),  # public by nature; tested in test_auth.py
}


def _roster():
    book = Workbook()
    sheet = book.active
    sheet.append(["户号", "小组", "姓名", "户主"])
    sheet.append([f"R{next(_n):05d}", "三组", "新村民", "是"])
    buf = io.BytesIO()
    book.save(buf)
    return {"file": (io.BytesIO(buf.getvalue()), "roster.xlsx")}


# (rule, method): (roles allowed in their own village, success status, body factory).
# Household-level routes name "household" scope: admin/reviewer/clerk any household of their
# village, recorders only their group's, residents only their own.
MATRIX = {
    ("/api/v1/me", "GET"): (set(ROLES) - {"anon"}, 200, None),
    ("/api/v1/auth/token", "DELETE"): (set(ROLES) - {"anon"}, 204, None),
    ("/api/v1/villages", "GET"): (set(ROLES) - {"anon"}, 200, None),
    ("/api/v1/villages/<code>", "GET"): (set(ROLES) - {"anon"}, 200, None),
    ("/api/v1/villages/<code>", "PATCH"): ({"admin"}, 200, lambda: {"privacy_mode": "masked"}),
    ("/api/v1/villages/<code>/groups", "GET"): (STAFF, 200, None),
    ("/api/v1/villages/<code>/groups", "POST"): (
        {"admin"},
        201,
        lambda: {"name": f"新组{next(_n)}"},
    ),
    ("/api/v1/villages/<code>/households", "GET"): (STAFF | {"resident"}, 200, None),
    ("/api/v1/villages/<code>/households", "POST"): (
        {"admin"},
        201,
        lambda: {"number": f"N{next(_n):05d}", "group_id": "GROUP"},
    ),
    ("/api/v1/villages/<code>/households/<int:household_id>", "GET"): ("household", 200, None),
    ("/api/v1/villages/<code>/households/<int:household_id>/residents", "POST"): (
        {"admin"},
        201,
        lambda: {"name": "新成员"},
    ),
    ("/api/v1/villages/<code>/households/<int:household_id>/balance", "GET"): (
        "household",
        200,
        None,
    ),
    ("/api/v1/villages/<code>/households/<int:household_id>/statement", "GET"): (
        "household",
        200,
        None,
    ),
    ("/api/v1/villages/<code>/residents", "GET"): (STAFF, 200, None),
    ("/api/v1/villages/<code>/residents/<int:resident_id>/pin", "POST"): (
        {"admin"},
        204,
        lambda: {"pin": "654321"},
    ),
    ("/api/v1/villages/<code>/users", "GET"): ({"admin"}, 200, None),
    ("/api/v1/villages/<code>/users", "POST"): (
        {"admin"},
        201,
        lambda: {
            "username": f"new{next(_n)}",
            "display_name": "新人",
            "password": "long-enough-1",
            "role": "clerk",
        },
    ),
    ("/api/v1/villages/<code>/roster", "POST"): ({"admin"}, 201, "ROSTER"),
    ("/api/v1/villages/<code>/audit", "GET"): ({"admin"}, 200, None),
    ("/api/v1/villages/<code>/schemes", "GET"): (STAFF | {"resident", "supervisor"}, 200, None),
    ("/api/v1/villages/<code>/ledger/head", "GET"): (STAFF | {"resident", "supervisor"}, 200, None),
    ("/api/v1/towns/<town>/summary", "GET"): ({"supervisor"}, 200, None),
}


@pytest.fixture(scope="module")
def env(databases):
    url = databases.fresh()
    app = make_app(url)
    world = build_world(app)
    yield app, world
    app.extensions["points.engine"].dispose()
    databases.drop(url)


def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.rule, method


def test_every_route_has_a_row(env):
    app, _ = env
    missing = [r for r in _api_rules(app) if r not in MATRIX and r not in NOT_IN_MATRIX]
    assert missing == [], f"add these routes to the authorization matrix: {missing}"


def _url(rule, world, *, village, home=None):
    home = home or (world.home1 if village is world.a else world.home_b)
    return (
        rule.replace("<code>", village.code)
        .replace("<int:household_id>", str(home.id))
        .replace("<int:resident_id>", str(world.members[home.id][-1]))
        .replace("<town>", village.town)
    )


def _call(client, method, url, token, body, world, village):
    headers = auth(token) if token else {}
    if body == "ROSTER":
        return client.open(
            url, method=method, headers=headers, data=_roster(), content_type="multipart/form-data"
        )
    payload = body() if body else None
    if payload and payload.get("group_id") == "GROUP":
        payload["group_id"] = world.group1.id if village is world.a else world.home_b.group_id
    return client.open(url, method=method, headers=headers, json=payload)


def _token(app, world, role, method="GET"):
    if role == "anon":
        return None
    if method != "DELETE":
        return world.tokens[role]
    # A fresh token for the DELETE row, which revokes the token it uses.
    if role in ("resident",):
        creds = {"phone": "13800001111", "pin": "123456"}
    else:
        creds = {"username": f"u-{role}", "password": "correct-horse-9"}
    return app.test_client().post("/api/v1/auth/token", json=creds).json["token"]


CASES = [(rule, method, role) for (rule, method) in MATRIX for role in ROLES]


@pytest.mark.parametrize("rule,method,role", CASES)
def test_own_village(env, rule, method, role):
    app, world = env
    allowed, ok, body = MATRIX[(rule, method)]
    token = _token(app, world, role, method)
    client = app.test_client()
    scoped = allowed == "household"
    homes = [world.home1, world.home2] if scoped else [None]
    for home in homes:
        url = _url(rule, world, village=world.a, home=home)
        response = _call(client, method, url, token, body, world, world.a)
        if role == "anon":
            expected = 401
        elif scoped:
            sees = (
                role in {"admin", "reviewer", "clerk"}
                or (role == "recorder" and home is world.home1)
                or (role == "resident" and home is world.home1)
            )
            expected = ok if sees else 403
        else:
            expected = ok if role in allowed else 403
        assert response.status_code == expected, (url, role, response.get_json())
        if expected >= 400:
            assert response.json["code"] == expected and response.json["message"]


@pytest.mark.parametrize("rule,method,role", CASES)
def test_other_village_is_closed(env, rule, method, role):
    app, world = env
    allowed, ok, body = MATRIX[(rule, method)]
    if "<code>" not in rule and "<town>" not in rule:
        pytest.skip("not village-scoped")
    token = _token(app, world, role, method)
    url = _url(rule, world, village=world.b)
    response = _call(app.test_client(), method, url, token, body, world, world.b)
    assert response.status_code == (401 if role == "anon" else 403), (url, role, response.json)
