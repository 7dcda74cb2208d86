"""API fixtures: an app on a fresh database, and a small world of two villages with a user of
every role, signed in through the real sign-in endpoint."""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field

import pytest

from api import create_app
from points import ledger
from points.auth.passwords import hash_password
from points.models import RoleAssignment, User
from points.models.org import Role
from tests.conftest import CITUS, NOW
from tests.factories import (
    adopt_catalog,
    make_group,
    make_household,
    make_scheme,
    make_village,
)

PASSWORD = "correct-horse-9"
# A small catalog adopted in both villages: one item posted without review, one reviewed.
CLAIM_RULES = [
    {
        "code": "MEI-01",
        "name": "庭院整洁",
        "category": "德治",
        "subcategory": "积美",
        "sign": 1,
        "points": 5,
        "unit": "time",
        "caps": {"month": 20},
        "review": "never",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
    {
        "code": "SHAN-01",
        "name": "见义勇为",
        "category": "德治",
        "subcategory": "积善",
        "sign": 1,
        "min_points": 5,
        "max_points": 30,
        "unit": "time",
        "caps": {"year": 60},
        "review": "always",
        "evidence_required": True,
        "recorder_roles": ["admin", "recorder", "resident"],
        "subjects": ["household"],
    },
    {
        "code": "FZ-51",
        "name": "赌博",
        "category": "法治",
        "sign": -1,
        "points": 10,
        "unit": "time",
        "caps": {"month": 20},
        "review": "always",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
    # Uncapped items for tests that make many claims.
    {
        "code": "ZZ-09",
        "name": "参加村民会议",
        "category": "自治",
        "sign": 1,
        "points": 1,
        "unit": "time",
        "review": "never",
        "recorder_roles": ["admin", "recorder", "resident"],
        "subjects": ["household"],
    },
    {
        "code": "FZ-59",
        "name": "违反村规民约",
        "category": "法治",
        "sign": -1,
        "points": 2,
        "unit": "time",
        "review": "always",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
]


def jpeg(colour: str = "green") -> bytes:
    """A small real JPEG (40×30) for uploads."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "JPEG")
    return buf.getvalue()


def make_app(db_url: str, **config):
    base = {
        "DATABASE_URL": db_url,
        "TESTING": True,
        "AUTO_MIGRATE": False,
        "SECRET_KEY": "test-secret",
        "SIGNIN_RATE_LIMIT": "1000 per minute",
    }
    base.update(config)
    return create_app(base)


@pytest.fixture(scope="session")
def world_template(databases):
    """(URL, pickled World): a database the world was built on once per worker, to be copied.

    build_world is deterministic (fixed NOW, fixed names); its bearer tokens are random but
    stored (hashed) in the database, so a copy accepts them. Copying the database costs what
    copying the empty template costs; building the world costs ~0.3 s a test on SQLite (more on
    PostgreSQL, more under load): villages, catalogs, seed awards and eight sign-ins."""
    url = databases.fresh()
    app = make_app(url)
    blob = pickle.dumps(build_world(app))
    app.extensions["points.engine"].dispose()  # a PostgreSQL template takes no connections
    yield url, blob
    databases.drop(url)


_WORLD_COPIES: set[str] = set()  # URLs of the databases copied from world_template


@pytest.fixture
def db_url(request, databases):
    """As tests/conftest.py's; a test that uses `world` gets a copy of world_template's database
    (on Citus, where there is one database, the world is built for each test instead)."""
    if "world" in request.fixturenames and not CITUS:
        url = databases.fresh(request.getfixturevalue("world_template")[0])
        _WORLD_COPIES.add(url)
    else:
        url = databases.fresh()
    yield url
    _WORLD_COPIES.discard(url)
    databases.drop(url)


@pytest.fixture
def app(db_url):
    return make_app(db_url)


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class World:
    """Village A (town 城关镇) with two groups and every role; village B (town 河西镇)."""

    a: object = None
    b: object = None
    group1: object = None
    group2: object = None
    home1: object = None  # in group1; the resident's household
    home2: object = None  # in group2
    home_b: object = None
    members: dict = field(default_factory=dict)  # household id -> resident ids
    users: dict = field(default_factory=dict)  # role name -> User
    tokens: dict = field(default_factory=dict)  # role name -> bearer token


def build_world(app) -> World:
    w = World()
    maker = app.extensions["points.sessionmaker"]
    with maker() as s, s.begin():
        w.a = make_village(s, "village-a", town="城关镇")
        w.b = make_village(s, "village-b", town="河西镇")
        w.group1, w.group2 = make_group(s, w.a, "一组"), make_group(s, w.a, "二组")
        w.home1 = make_household(s, w.a, w.group1, members=3)
        w.home2 = make_household(s, w.a, w.group2, members=2)
        w.home_b = make_household(s, w.b, make_group(s, w.b, "一组"))
        for home in (w.home1, w.home2, w.home_b):
            w.members[home.id] = [m.id for m in home.members]
        w.home1.members[1].phone = "13800001111"
        w.home1.members[2].phone = "13800002222"
        # A party member in each village (the party track's read routes name them).
        w.home1.members[2].is_party_member = True
        w.home_b.members[-1].is_party_member = True
        for v, home in ((w.a, w.home1), (w.b, w.home_b)):
            scheme = make_scheme(s, v)
            adopt_catalog(s, scheme, CLAIM_RULES, now=NOW)
            make_scheme(
                s,
                v,
                code="party",
                name="党员积分",
                subject_kind="resident",
                period_kind="year",
                redeemable=False,
            )
            ledger.award(
                s,
                scheme=scheme,
                subject_id=home.id,
                points=30,
                idem_key="seed",
                actor_id=None,
                now=NOW,
                memo="打扫卫生",
                category="德治",
            )
        specs = {
            "admin": (Role.ADMIN, w.a.id, None, None),
            "admin2": (Role.ADMIN, w.a.id, None, None),  # a second 村两委 member: the checker
            "reviewer": (Role.REVIEWER, w.a.id, None, None),
            "recorder": (Role.RECORDER, w.a.id, w.group1.id, None),
            "clerk": (Role.CLERK, w.a.id, None, None),
            "supervisor": (Role.SUPERVISOR, None, None, "城关镇"),
            "admin_b": (Role.ADMIN, w.b.id, None, None),
        }
        for name, (role, village_id, group_id, town) in specs.items():
            user = User(
                username=f"u-{name}", display_name=name, password_hash=hash_password(PASSWORD)
            )
            user.roles.append(
                RoleAssignment(role=role, village_id=village_id, group_id=group_id, town=town)
            )
            s.add(user)
            w.users[name] = user
        resident = User(
            display_name="村民",
            phone="13800001111",
            resident_id=w.home1.members[1].id,
            pin_hash=hash_password("123456"),
        )
        s.add(resident)
        w.users["resident"] = resident
    client = app.test_client()
    for name in w.users:
        creds = (
            {"phone": "13800001111", "pin": "123456"}
            if name == "resident"
            else {"username": f"u-{name}", "password": PASSWORD}
        )
        response = client.post("/api/v1/auth/token", json=creds)
        assert response.status_code == 201, response.json
        w.tokens[name] = response.json["token"]
    return w


@pytest.fixture
def world(request, app):
    """The world of build_world, on this test's own database: a copy of world_template's, with
    its own unpickled objects (tests never share Python objects either)."""
    if app.config["DATABASE_URL"] in _WORLD_COPIES:
        return pickle.loads(request.getfixturevalue("world_template")[1])
    return build_world(app)


def auth(token: str, **headers) -> dict:
    return {"Authorization": f"Bearer {token}", **headers}
