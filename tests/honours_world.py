"""A village with a year (2025) of posted scores, for the honours tests of every layer.

Households (quarterly scheme, base 0, stars at 60/80/100/120/150 a quarter on average):
  A 张大山 640 points → 160 a quarter, 5 stars;  B 李四 400 → 100, 3 stars;
  C 王五 320 and gambling under a 一票否决 (year) → no stars;  D 赵六 80 → 20, none.
Party members (yearly party scheme): A's 张大山 150 and 民主评议 90 → 132, 4 stars;
  B's 李四 90 and 基本合格 (60) → 81, 2 stars (the grade caps at 2 anyway).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from points import claims
from points.claims import ClaimInput
from points.models.catalog import SubjectKind
from points.models.org import PrivacyMode
from points.periods import PeriodKind
from tests.factories import (
    adopt_catalog,
    make_group,
    make_household,
    make_scheme,
    make_user,
    make_village,
)

HOUSEHOLD_RULES = [
    {"code": "MEI-01", "name": "庭院整洁", "category": "德治", "sign": 1, "points": 40,
     "unit": "time", "review": "never", "recorder_roles": ["admin"], "subjects": ["household"]},
    {"code": "FZ-51", "name": "赌博", "category": "法治", "sign": -1, "points": 10,
     "unit": "time", "review": "never", "recorder_roles": ["admin"], "subjects": ["household"],
     "veto": "year"},
]  # fmt: skip
PARTY_RULES = [
    {"code": "DJ-01", "name": "参加主题党日", "category": "党建", "sign": 1, "points": 30,
     "unit": "time", "review": "never", "recorder_roles": ["admin"],
     "subjects": ["party_member"]},
]  # fmt: skip
YEAR = 2025
PASSWORD = "honour-pass-2025"
START = datetime(2025, 1, 1, 2, tzinfo=UTC)
NAMES = (("001", "张大山"), ("002", "李四"), ("003", "王五"), ("004", "赵六"))
ACTS = {"001": 16, "002": 10, "003": 8, "004": 2}


class Year:
    """Build it with a session (flushes only); ids and actors are attributes."""

    def __init__(self, session, code: str | None = None, privacy=PrivacyMode.MASKED):
        self.s = session
        self.village = make_village(session, code, name="东山村", privacy_mode=privacy)
        self.group = make_group(session, self.village, "一组")
        self.homes = {}
        for number, name in NAMES:
            home = make_household(session, self.village, self.group, members=1)
            home.number = number
            home.members[0].name = name
            self.homes[number] = home
        for number in ("001", "002"):
            head = self.homes[number].members[0]
            head.is_party_member, head.party_branch = True, "东山村党支部"
        self.scheme = make_scheme(session, self.village, period_kind=PeriodKind.QUARTER)
        self.party = make_scheme(
            session,
            self.village,
            "party",
            name="党员积分",
            subject_kind=SubjectKind.RESIDENT,
            period_kind=PeriodKind.YEAR,
            redeemable=False,
        )
        adopt_catalog(session, self.scheme, HOUSEHOLD_RULES, now=START, adopted_on=date(2025, 1, 1))
        adopt_catalog(session, self.party, PARTY_RULES, now=START, adopted_on=date(2025, 1, 1))
        self.admin = make_user(session, self.village, "admin", name="书记")
        self.admin2 = make_user(session, self.village, "admin", name="主任")
        self.reviewer = make_user(session, self.village, "reviewer", name="评议组长")
        self.resident_b = make_user(
            session, self.village, "resident", resident=self.homes["002"].members[0]
        )
        session.flush()

    def give_logins(self) -> dict:
        """Give the staff passwords and 李四 (household 002) a phone sign-in; return the forms."""
        from points.auth.passwords import hash_password
        from points.models import User

        forms = {}
        for key in ("admin", "admin2", "reviewer"):
            user = self.s.get(User, getattr(self, key).user_id)
            user.username, user.password_hash = (
                f"{self.village.code}-{key}",
                hash_password(PASSWORD),
            )
            forms[key] = {"username": user.username, "password": PASSWORD}
        user = self.s.get(User, self.resident_b.user_id)
        user.phone, user.pin_hash = "13900002025", hash_password("602580")
        forms["resident"] = {"phone": user.phone, "pin": "602580"}
        self.s.flush()
        return forms

    def member(self, number: str):
        return self.homes[number].members[0]

    def _post(self, scheme, number: str, code: str, on: date, resident_id=None):
        when = datetime(on.year, on.month, on.day, 2, tzinfo=UTC)
        item = ClaimInput(
            household_id=self.homes[number].id,
            resident_id=resident_id,
            rule_code=code,
            occurred_on=on,
            description="经核实",
        )
        claim = claims.record(
            self.s, village=self.village, scheme=scheme, actor=self.admin, item=item, now=when
        )
        if claim.status == "pending_review":  # deductions are always reviewed
            claims.approve(self.s, claim=claim, actor=self.reviewer, now=when)
        return claims.post_claim(self.s, claim_id=claim.id, now=when + timedelta(days=8))

    def score_the_year(self) -> None:
        """Post the year's acts, spread over its months."""
        for number, n in ACTS.items():
            for i in range(n):
                self._post(self.scheme, number, "MEI-01", date(YEAR, 1 + i % 12, 10))
        self._post(self.scheme, "003", "FZ-51", date(YEAR, 6, 1))
        for number, n in (("001", 5), ("002", 3)):
            for i in range(n):
                self._post(
                    self.party,
                    number,
                    "DJ-01",
                    date(YEAR, 3 + i * 2, 5),
                    resident_id=self.member(number).id,
                )
        self.s.flush()
