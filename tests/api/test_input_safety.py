"""Hostile and careless input: always a clear 4xx in the envelope, and the database unchanged."""

import pytest
from sqlalchemy import func, select

from points.models import AuditEvent, Group, Household, Resident, User
from tests.api.conftest import auth


def _counts(app):
    with app.extensions["points.sessionmaker"]() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t))
            for t in (Group, Household, Resident, User, AuditEvent)
        )


BAD_BODIES = [
    ("households", {"number": "X1", "group_id": "1; DROP TABLE households"}),
    ("households", {"number": "X1", "group_id": 1.5}),
    ("households", {"number": "", "group_id": 1}),
    ("households", {"number": "X" * 33, "group_id": 1}),
    ("households", {"number": "X1", "group_id": 1, "village_id": 2}),
    ("households", {"number": None, "group_id": 1}),
    ("households", ["not", "an", "object"]),
    ("groups", {"name": ""}),
    ("groups", {"name": "组" * 101}),
    ("groups", {"name": {"$ne": 1}}),
    (
        "users",
        {"username": "' OR 1=1 --", "display_name": "x", "password": "longenough", "role": "admin"},
    ),
    ("users", {"username": "okname", "display_name": "x", "password": "short", "role": "admin"}),
    (
        "users",
        {"username": "okname", "display_name": "x", "password": "longenough", "role": "superuser"},
    ),
]


@pytest.mark.parametrize("path,body", BAD_BODIES)
def test_bad_json_is_refused_with_the_envelope(app, client, world, path, body):
    before = _counts(app)
    response = client.post(
        f"/api/v1/villages/{world.a.code}/{path}", json=body, headers=auth(world.tokens["admin"])
    )
    assert response.status_code in (400, 404, 409, 422), response.json
    assert set(response.json) >= {"code", "status", "error", "message"}
    assert response.json["code"] == response.status_code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json["message"])
    assert _counts(app) == before


def test_unknown_field_is_named(client, world):
    response = client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        json={"name": "五组", "extra": 1},
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 422
    assert response.json["errors"] == {"extra": ["不允许的字段"]}


@pytest.mark.parametrize(
    "raw,ctype",
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"name=x", "text/plain"),
    ],
)
def test_unparseable_bodies(app, client, world, raw, ctype):
    before = _counts(app)
    response = client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        data=raw,
        headers=auth(world.tokens["admin"], **{"Content-Type": ctype}),
    )
    assert 400 <= response.status_code < 500
    assert response.json["error"] and response.json["message"]
    assert _counts(app) == before


def test_oversized_upload_is_refused(app, client, world):
    before = _counts(app)
    response = client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        data=b"{" + b" " * (9 * 1024 * 1024) + b"}",
        headers=auth(world.tokens["admin"], **{"Content-Type": "application/json"}),
    )
    assert response.status_code == 413 and response.json["error"] == "too_large"
    assert _counts(app) == before


@pytest.mark.parametrize("name", ["𠀀𪚥 组", "组\u200b名", "‮反向", "NUL\x00组", "  前后空格  "])
def test_unicode_edges_are_stored_or_refused_cleanly(app, client, world, name):
    response = client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        json={"name": name},
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code in (201, 400, 422), response.json
    if response.status_code == 201:
        listed = client.get(
            f"/api/v1/villages/{world.a.code}/groups", headers=auth(world.tokens["admin"])
        ).json
        assert response.json["name"] in [g["name"] for g in listed]


@pytest.mark.parametrize("q", ["' OR '1'='1", "%", "_", "\\", "张%'; --"])
def test_search_with_sql_looking_text_finds_nothing_extra(client, world, q):
    response = client.get(
        f"/api/v1/villages/{world.a.code}/households",
        query_string={"q": q},
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 200
    assert response.json["total"] <= 2  # never more than exists


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/villages/village-a/households/999999",
        "/api/v1/villages/no-such-village",
        "/api/v1/villages/village-a/households/-1",
        "/api/v1/nothing-here",
    ],
)
def test_unknown_things_are_404_in_the_envelope(client, world, url):
    response = client.get(url, headers=auth(world.tokens["admin"]))
    assert response.status_code == 404
    assert response.json["error"] == "not_found" and response.json["message"]


def test_wrong_query_types_are_422(client, world):
    response = client.get(
        f"/api/v1/villages/{world.a.code}/households",
        query_string={"limit": "lots"},
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 422 and response.json["errors"] == {"limit": ["应为整数"]}


def test_phones_are_always_masked(client, world):
    home = client.get(
        f"/api/v1/villages/{world.a.code}/households/{world.home1.id}",
        headers=auth(world.tokens["admin"]),
    ).json
    phones = [m["phone"] for m in home["members"] if m["phone"]]
    assert phones == ["138****1111", "138****2222"]
