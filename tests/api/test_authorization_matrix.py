"""Every API route × every role × own/other village (and own/other group for recorders).

The expected statuses are written here by hand, not derived from the code: a route that is
added without a row here fails `test_every_route_has_a_row`.
"""

from __future__ import annotations

import io
import itertools

import pytest
from openpyxl import Workbook

from tests.api.boards_world import board_ids, open_appeal
from tests.api.claims_world import evidence_of, make_claim, make_draft, open_objection
from tests.api.conftest import auth, build_world, make_app
from tests.api.honours_world import honour_ids, open_honour_appeal
from tests.api.shop_world import build_shop, live_card, pending_order, phone_code, redeemed

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
    # The full statement is not the counter's business: a clerk reads the balance instead.
    ("/api/v1/villages/<code>/households/<int:household_id>/statement", "GET"): (
        "statement",
        200,
        None,
    ),
    ("/api/v1/villages/<code>/residents", "GET"): (STAFF, 200, None),
    ("/api/v1/villages/<code>/residents/<int:resident_id>/pin", "POST"): (
        {"admin"},
        204,
        lambda: {"pin": "730915"},
    ),
    ("/api/v1/villages/<code>/users", "GET"): ({"admin"}, 200, None),
    ("/api/v1/villages/<code>/users/<int:user_id>/unlock", "POST"): ({"admin"}, 200, None),
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
    ("/api/v1/villages/<code>/audit/export", "GET"): ({"admin"}, 200, None),
    ("/api/v1/villages/<code>/schemes", "GET"): (STAFF | {"resident", "supervisor"}, 200, None),
    ("/api/v1/villages/<code>/ledger/head", "GET"): (STAFF | {"resident", "supervisor"}, 200, None),
    ("/api/v1/towns/<town>/summary", "GET"): ({"supervisor"}, 200, None),
}


def _with_world(fn):
    """Mark a body factory that needs the world (and makes fresh codes in it)."""
    fn.with_world = True
    return fn


def _soap(w, n=1):
    return [{"good_id": w.shop.goods["肥皂"], "quantity": n}]


# The points shop (积分超市). Ids in these URLs are made fresh for each call where a call
# uses them up: an order to collect or cancel, a redemption to cancel, a card to revoke.
SHOPKEEPERS = {"admin", "clerk"}
MATRIX.update(
    {
        ("/api/v1/villages/<code>/stores", "GET"): (STAFF | {"resident"}, 200, None),
        ("/api/v1/villages/<code>/stores", "POST"): (
            {"admin"},
            201,
            lambda: {"name": f"定点商店{next(_n)}", "kind": "private"},
        ),
        ("/api/v1/villages/<code>/stores/<int:store_id>", "PATCH"): (
            {"admin"},
            200,
            lambda: {"address": "村委会一楼"},
        ),
        ("/api/v1/villages/<code>/stores/<int:store_id>/goods", "GET"): (
            STAFF | {"resident"},
            200,
            None,
        ),
        ("/api/v1/villages/<code>/stores/<int:store_id>/goods", "POST"): (
            SHOPKEEPERS,
            201,
            lambda: {"name": f"毛巾{next(_n)}", "price": 15, "unit": "条"},
        ),
        ("/api/v1/villages/<code>/goods/<int:good_id>", "PATCH"): (
            SHOPKEEPERS,
            200,
            lambda: {"low_stock_at": 3},
        ),
        ("/api/v1/villages/<code>/goods/<int:good_id>/stock", "GET"): (SHOPKEEPERS, 200, None),
        ("/api/v1/villages/<code>/goods/<int:good_id>/stock", "POST"): (
            SHOPKEEPERS,
            201,
            lambda: {"kind": "donation", "quantity": 5, "source": "乡贤"},
        ),
        ("/api/v1/villages/<code>/low-stock", "GET"): (SHOPKEEPERS, 200, None),
        ("/api/v1/villages/<code>/redemption-window", "GET"): (STAFF | {"resident"}, 200, None),
        ("/api/v1/villages/<code>/redemption-window", "PUT"): (
            {"admin"},
            200,
            lambda: {"days": None},
        ),
        ("/api/v1/villages/<code>/my/qr-token", "GET"): ({"resident"}, 200, None),
        ("/api/v1/villages/<code>/my/qr.png", "GET"): ({"resident"}, 200, None),
        ("/api/v1/villages/<code>/my/qr.svg", "GET"): ({"resident"}, 200, None),
        ("/api/v1/villages/<code>/stores/<int:store_id>/scan", "POST"): (
            {"clerk"},
            200,
            _with_world(lambda w: {"code": phone_code(w.app, w.a.id, w.home1.id)}),
        ),
        ("/api/v1/villages/<code>/stores/<int:store_id>/redemptions", "POST"): (
            {"clerk"},
            201,
            _with_world(
                lambda w: {"checkout": phone_code(w.app, w.a.id, w.home1.id), "items": _soap(w)}
            ),
        ),
        ("/api/v1/villages/<code>/redemptions", "GET"): (SHOPKEEPERS, 200, None),
        ("/api/v1/villages/<code>/redemptions/<int:redemption_id>", "GET"): (
            SHOPKEEPERS,
            200,
            None,
        ),
        ("/api/v1/villages/<code>/redemptions/<int:redemption_id>/cancel", "POST"): (
            {"admin"},
            200,
            lambda: {"reason": "测试撤销"},
        ),
        ("/api/v1/villages/<code>/households/<int:household_id>/redemptions", "GET"): (
            "household",
            200,
            None,
        ),
        ("/api/v1/villages/<code>/stores/<int:store_id>/counter-code.png", "GET"): (
            SHOPKEEPERS,
            200,
            None,
        ),
        ("/api/v1/villages/<code>/stores/<int:store_id>/counter-code.svg", "GET"): (
            SHOPKEEPERS,
            200,
            None,
        ),
        ("/api/v1/villages/<code>/stores/<int:store_id>/orders", "POST"): (
            {"resident"},
            201,
            _with_world(lambda w: {"items": _soap(w)}),
        ),
        ("/api/v1/villages/<code>/orders", "GET"): (SHOPKEEPERS | {"resident"}, 200, None),
        ("/api/v1/villages/<code>/orders/<int:order_id>/collect", "POST"): (
            {"clerk"},
            201,
            lambda: {},
        ),
        ("/api/v1/villages/<code>/orders/<int:order_id>/cancel", "POST"): (
            {"clerk", "resident"},
            200,
            None,
        ),
        ("/api/v1/villages/<code>/cards", "GET"): ({"admin"}, 200, None),
        ("/api/v1/villages/<code>/cards", "POST"): (
            {"admin"},
            201,
            _with_world(lambda w: {"household_ids": [w.home2.id], "reissue": True}),
        ),
        ("/api/v1/villages/<code>/cards/<int:card_id>/revoke", "POST"): (
            {"admin"},
            200,
            lambda: {"reason": "遗失"},
        ),
        ("/api/v1/villages/<code>/cards/sheet.pdf", "GET"): ({"admin"}, 200, None),
    }
)


# Claims: review, 公示, objections, posting, corrections. Claims are made fresh per call in the
# state the route needs; household-level routes use a claim of the household in question.
REVIEWERS = {"admin", "reviewer"}
MATRIX.update(
    {
        ("/api/v1/villages/<code>/claims", "GET"): (STAFF | {"resident"}, 200, None),
        ("/api/v1/villages/<code>/claims", "POST"): (
            {"admin", "recorder"},
            201,
            _with_world(
                lambda w: {
                    "household_id": w.home1.id,
                    "rule_code": "ZZ-09",
                    "occurred_on": _today(),
                }
            ),
        ),
        ("/api/v1/villages/<code>/claims/batch", "POST"): (
            {"admin", "recorder"},
            201,
            _with_world(
                lambda w: {
                    "title": "村民大会",
                    "rule_code": "ZZ-09",
                    "occurred_on": _today(),
                    "subjects": [{"household_id": w.home1.id}],
                }
            ),
        ),
        ("/api/v1/villages/<code>/claims/group", "POST"): (
            {"admin", "recorder"},
            201,
            _with_world(
                lambda w: {
                    "title": "一组（卫生示范组）",
                    "rule_code": "ZZ-09",
                    "occurred_on": _today(),
                    "group_id": w.group1.id,
                }
            ),
        ),
        ("/api/v1/villages/<code>/declarations", "POST"): ({"resident"}, 201, "DECLARE"),
        ("/api/v1/villages/<code>/claims/<int:claim_id>", "GET"): ("household", 200, None),
        ("/api/v1/villages/<code>/claims/<int:claim_id>/evidence/<int:evidence_id>", "GET"): (
            "household",
            200,
            None,
        ),
        ("/api/v1/villages/<code>/claims/<int:claim_id>/approve", "POST"): (
            REVIEWERS,
            200,
            lambda: {},
        ),
        ("/api/v1/villages/<code>/claims/<int:claim_id>/reject", "POST"): (
            REVIEWERS,
            200,
            lambda: {"reason": "证据不足"},
        ),
        ("/api/v1/villages/<code>/claims/<int:claim_id>/objections", "POST"): (
            STAFF | {"resident"},
            201,
            lambda: {"reason": "有疑问"},
        ),
        ("/api/v1/villages/<code>/objections/<int:objection_id>/resolve", "POST"): (
            REVIEWERS,
            200,
            lambda: {"uphold": False, "note": "经核实属实"},
        ),
        ("/api/v1/villages/<code>/claims/<int:claim_id>/post", "POST"): ({"admin"}, 200, None),
        ("/api/v1/villages/<code>/claims/<int:claim_id>/reverse", "POST"): (
            {"admin"},
            200,
            lambda: {"reason": "核实有误"},
        ),
        ("/api/v1/villages/<code>/anomalies", "GET"): (REVIEWERS, 200, None),
        ("/api/v1/public/<code>/notices", "GET"): ("public", 200, None),
    }
)
CATALOG = "/api/v1/villages/<code>/schemes/<scheme_code>/catalog"
MATRIX.update(
    {
        (CATALOG, "GET"): (STAFF, 200, None),
        (CATALOG, "POST"): ({"admin"}, 201, "CATALOG"),
        (CATALOG + "/export", "GET"): (STAFF, 200, None),
        (CATALOG + "/diff", "GET"): (STAFF, 200, None),
        (CATALOG + "/<int:number>/adopt", "POST"): (
            {"admin"},
            200,
            lambda: {"body": "村民代表大会", "adopted_on": _today()},
        ),
        (CATALOG + "/dryrun", "GET"): (REVIEWERS, 200, None),
    }
)

# 红黑榜: boards are made fresh per call in the state the route needs (a draft to edit or
# approve, an approved one to publish, a published one to withdraw, appeal or download).
MATRIX.update(
    {
        ("/api/v1/villages/<code>/boards", "GET"): (STAFF, 200, None),
        ("/api/v1/villages/<code>/party-members", "GET"): ({"admin", "reviewer"}, 200, None),
        # The URL names a member of household 1 who is not the resident: staff only.
        ("/api/v1/villages/<code>/party-members/<int:resident_id>", "GET"): (
            {"admin", "reviewer"},
            200,
            None,
        ),
        ("/api/v1/villages/<code>/boards", "POST"): (
            {"admin"},
            201,
            lambda: {"month": f"{1900 + next(_n) // 12}-{next(_n) % 12 + 1:02d}"},
        ),
        ("/api/v1/villages/<code>/boards/<int:board_id>", "GET"): (STAFF, 200, None),
        ("/api/v1/villages/<code>/boards/<int:board_id>/nominations", "POST"): (
            {"admin"},
            201,
            _with_world(lambda w: {"household_id": w.home2.id, "text": "热心公益"}),
        ),
        (
            "/api/v1/villages/<code>/boards/<int:board_id>/entries/<int:entry_id>/remove",
            "POST",
        ): ({"admin"}, 200, lambda: {"reason": "本人不愿上榜"}),
        ("/api/v1/villages/<code>/boards/<int:board_id>/approve", "POST"): ({"admin"}, 200, None),
        ("/api/v1/villages/<code>/boards/<int:board_id>/publish", "POST"): ({"admin"}, 200, None),
        ("/api/v1/villages/<code>/boards/<int:board_id>/withdraw", "POST"): (
            {"admin"},
            200,
            lambda: {"reason": "名单有误"},
        ),
        (
            "/api/v1/villages/<code>/boards/<int:board_id>/entries/<int:entry_id>/appeals",
            "POST",
        ): ({"resident"}, 201, lambda: {"reason": "不属实"}),
        ("/api/v1/villages/<code>/board-appeals", "GET"): (REVIEWERS, 200, None),
        ("/api/v1/villages/<code>/board-appeals/<int:appeal_id>/resolve", "POST"): (
            REVIEWERS,
            200,
            lambda: {"uphold": False, "resolution": "经核实属实"},
        ),
        ("/api/v1/public/<code>/boards", "GET"): ("public", 200, None),
        ("/api/v1/public/<code>/boards/<int:board_id>", "GET"): ("public", 200, None),
        ("/api/v1/public/<code>/boards/<int:board_id>/poster.pdf", "GET"): ("public", 200, None),
        ("/api/v1/public/<code>/boards/<int:board_id>/board.xlsx", "GET"): ("public", 200, None),
    }
)
# Event check-in: each call gets a fresh event of village A, open now, so a check-in or a
# close succeeds for every role allowed; the door takes a walk-in by name.
DOOR = {"admin", "recorder", "clerk"}
EVENTS = "/api/v1/villages/<code>/events"


def _event(app, world) -> int:
    from datetime import timedelta

    from points import events
    from points.db import utcnow
    from points.ledger.statements import get_scheme
    from points.models import Village
    from points.org.access import load_actor

    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        return events.create_event(
            s,
            village=village,
            scheme=get_scheme(s, village=village, code="household"),
            actor=load_actor(s, world.users["admin"].id),
            title=f"会议{next(_n)}",
            place="会议室",
            starts_at=utcnow() - timedelta(hours=1),
            ends_at=utcnow() + timedelta(hours=1),
            rule_code="ZZ-09",
            audience="village",
            now=utcnow(),
        ).id


def _event_code(w) -> dict:
    from api.events import qr as event_qr
    from points.models.events import Event

    with w.app.extensions["points.sessionmaker"]() as s:
        event = s.get(Event, _event(w.app, w))
        return {"code": event_qr.sign(w.app.config["SECRET_KEY"], event)}


MATRIX.update(
    {
        (EVENTS, "GET"): (DOOR, 200, None),
        (EVENTS, "POST"): (
            {"admin"},
            201,
            lambda: {
                "title": "村民大会",
                "place": "会议室",
                "starts_at": "2026-11-30T09:00:00+08:00",
                "ends_at": "2026-11-30T11:00:00+08:00",
                "rule_code": "ZZ-09",
            },
        ),
        (EVENTS + "/<int:event_id>", "GET"): (DOOR, 200, None),
        (EVENTS + "/<int:event_id>/attendees", "GET"): (DOOR, 200, None),
        (EVENTS + "/<int:event_id>/checkins", "POST"): (
            DOOR,
            201,
            _with_world(lambda w: {"resident_id": w.members[w.home2.id][0]}),
        ),
        # A resident checks in with the event's QR; staff are not residents (403).
        (EVENTS + "/checkin", "POST"): ({"resident"}, 201, _with_world(_event_code)),
        (EVENTS + "/<int:event_id>/close", "POST"): ({"admin"}, 200, None),
    }
)
# Honours: lists are made fresh per call in the state the route needs, like boards.
HONOUR_STAFF = {"admin", "reviewer"}
MATRIX.update(
    {
        ("/api/v1/villages/<code>/honours", "GET"): (HONOUR_STAFF, 200, None),
        ("/api/v1/villages/<code>/honours", "POST"): (
            {"admin"},
            201,
            lambda: {"kind": "models", "year": 2024},
        ),
        ("/api/v1/villages/<code>/honours/<int:list_id>", "GET"): (HONOUR_STAFF, 200, None),
        ("/api/v1/villages/<code>/honours/<int:list_id>/nominations", "POST"): (
            HONOUR_STAFF,
            201,
            _with_world(
                lambda w: {
                    "household_id": w.home2.id,
                    "resident_id": w.members[w.home2.id][0],
                    "title": "优秀群众",
                    "text": "热心公益",
                }
            ),
        ),
        ("/api/v1/villages/<code>/honours/<int:list_id>/approve", "POST"): ({"admin"}, 200, None),
        ("/api/v1/villages/<code>/honours/<int:list_id>/publish", "POST"): ({"admin"}, 200, None),
        ("/api/v1/villages/<code>/honours/<int:list_id>/withdraw", "POST"): (
            {"admin"},
            200,
            lambda: {"reason": "名单有误"},
        ),
        (
            "/api/v1/villages/<code>/honours/<int:list_id>/entries/<int:honour_entry_id>/appeals",
            "POST",
        ): ({"resident"}, 201, lambda: {"reason": "不属实"}),
        ("/api/v1/villages/<code>/honour-appeals", "GET"): (HONOUR_STAFF, 200, None),
        ("/api/v1/villages/<code>/honour-appeals/<int:honour_appeal_id>/resolve", "POST"): (
            HONOUR_STAFF,
            200,
            lambda: {"uphold": False, "resolution": "经核实属实"},
        ),
        ("/api/v1/villages/<code>/party-reviews", "POST"): (
            {"admin"},
            201,
            _with_world(
                lambda w: {"resident_id": w.members[w.home1.id][2], "year": 2024, "score": 90}
            ),
        ),
        ("/api/v1/villages/<code>/my/honours", "GET"): ({"resident"}, 200, None),
        ("/api/v1/towns/<town>/honours", "GET"): ({"supervisor"}, 200, None),
        ("/api/v1/public/<code>/honours", "GET"): ("public", 200, None),
        ("/api/v1/public/<code>/honours/<int:list_id>", "GET"): ("public", 200, None),
        ("/api/v1/public/<code>/honours/records/<ref>", "GET"): ("public", 200, None),
    }
)
CLAIM_STATE = {
    "/approve": "pending_review",
    "/reject": "pending_review",
    "/objections": "in_notice",
    "/post": "due",
    "/reverse": "posted",
}


def _today():
    from points.db import utcnow

    return utcnow().date().isoformat()


def _claim_for(rule, world, home):
    if "<int:claim_id>" not in rule:
        return None
    for suffix, state in CLAIM_STATE.items():
        if rule.endswith(suffix):
            return make_claim(world.app, world, state)
    return make_claim(world.app, world, "in_notice", home, evidence="evidence" in rule)


@pytest.fixture(scope="module")
def env(databases):
    url = databases.fresh()
    app = make_app(url)
    world = build_world(app)
    build_shop(app, world, stock=500)
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
    claim_id = _claim_for(rule, world, home or world.home1)
    board_id, entry_id = board_ids(world.app, world, rule)
    list_id, honour_entry_id, ref = honour_ids(world.app, world, rule)
    home = home or (world.home1 if village is world.a else world.home_b)
    return (
        rule.replace("<code>", village.code)
        .replace("<int:household_id>", str(home.id))
        .replace("<int:resident_id>", str(world.members[home.id][-1]))
        .replace(
            "<int:user_id>", str(world.users["recorder" if village is world.a else "admin_b"].id)
        )
        .replace("<town>", village.town)
        .replace("<int:store_id>", str(world.shop.store_id))
        .replace("<int:good_id>", str(world.shop.goods["肥皂"]))
        .replace("<int:order_id>", _fresh(rule, "<int:order_id>", pending_order, world))
        .replace("<int:redemption_id>", _fresh(rule, "<int:redemption_id>", redeemed, world))
        .replace("<int:card_id>", _fresh(rule, "<int:card_id>", _card, world))
        .replace("<int:event_id>", _fresh(rule, "<int:event_id>", _event, world))
        .replace("<int:objection_id>", _fresh(rule, "<int:objection_id>", open_objection, world))
        .replace("<int:claim_id>", str(claim_id))
        .replace("<int:board_id>", board_id)
        .replace("<int:entry_id>", entry_id)
        .replace("<int:appeal_id>", _fresh(rule, "<int:appeal_id>", open_appeal, world))
        .replace("<int:list_id>", list_id)
        .replace("<int:honour_entry_id>", honour_entry_id)
        .replace("<ref>", ref)
        .replace(
            "<int:honour_appeal_id>",
            _fresh(rule, "<int:honour_appeal_id>", open_honour_appeal, world),
        )
        .replace("<scheme_code>", "household")
        .replace("<int:number>", _fresh(rule, "<int:number>", make_draft, world))
        .replace("<int:evidence_id>", str(evidence_of(world.app, claim_id) if claim_id else 0))
    )


def _fresh(rule, placeholder, make, world):
    """A new object's id for each call of a rule that uses it up (an order, a card...)."""
    return str(make(world.app, world)) if placeholder in rule else placeholder


def _card(app, world):
    return live_card(app, world, world.home2)


def _call(client, method, url, token, body, world, village):
    headers = auth(token) if token else {}
    if body == "CATALOG":
        exported = client.get(url + "/export?format=json", headers=auth(world.tokens["admin"]))
        return client.open(
            url,
            method=method,
            headers=headers,
            content_type="multipart/form-data",
            data={"file": (io.BytesIO(exported.data), "catalog.json")},
        )
    if body == "DECLARE":
        return client.open(
            url,
            method=method,
            headers=headers,
            content_type="multipart/form-data",
            data={"rule_code": "ZZ-09", "occurred_on": _today()},
        )
    if body == "ROSTER":
        return client.open(
            url, method=method, headers=headers, data=_roster(), content_type="multipart/form-data"
        )
    payload = body(world) if getattr(body, "with_world", False) else body() if body else None
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
    scoped = allowed in ("household", "statement")
    homes = [world.home1, world.home2] if scoped else [None]
    for home in homes:
        url = _url(rule, world, village=world.a, home=home)
        response = _call(client, method, url, token, body, world, world.a)
        if allowed == "public":
            expected = ok
        elif role == "anon":
            expected = 401
        elif scoped:
            sees = (
                role
                in (
                    {"admin", "reviewer"}
                    if allowed == "statement"
                    else {"admin", "reviewer", "clerk"}
                )
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
    if "<code>" not in rule and "<town>" not in rule or allowed == "public":
        pytest.skip("not village-scoped, or public")
    token = _token(app, world, role, method)
    url = _url(rule, world, village=world.b)
    response = _call(app.test_client(), method, url, token, body, world, world.b)
    assert response.status_code == (401 if role == "anon" else 403), (url, role, response.json)
