"""Group and event awards: one claim for a group expands to each member household, with one
notice row, one review and one objection for all of them; each household posts once."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from points import claims, ledger
from points.claims import RuleRefusedError
from points.claims.notices import public_notices
from points.ledger.verify import verify
from points.models.claims import ClaimStatus
from tests.factories import (
    adopt_catalog,
    make_group,
    make_household,
    make_scheme,
    make_user,
    make_village,
)

RULES = [
    {"code": "MEI-08", "name": "小组被评为卫生示范组", "category": "德治", "subcategory": "积美",
     "sign": 1, "points": 2, "unit": "time", "review": "always", "once": True,
     "recorder_roles": ["admin"], "subjects": ["household"]},
]  # fmt: skip
TODAY = date(2026, 11, 20)


@pytest.fixture
def g(session, now):
    class G:
        pass

    x = G()
    x.village = make_village(session)
    x.scheme = make_scheme(session, x.village, notice_days=7)
    adopt_catalog(session, x.scheme, RULES, now=now)
    x.group = make_group(session, x.village, "三组")
    x.homes = [make_household(session, x.village, x.group) for _ in range(4)]
    x.other = make_household(session, x.village, make_group(session, x.village, "四组"))
    x.admin = make_user(session, x.village, "admin")
    x.reviewer = make_user(session, x.village, "reviewer")
    x.resident = make_user(session, x.village, "resident", resident=x.other.members[0])
    return x


def award(session, g, now):
    ids = claims.group_households(session, village=g.village, group_id=g.group.id)
    return claims.record_group(
        session,
        village=g.village,
        scheme=g.scheme,
        actor=g.admin,
        title="三组（卫生示范组）",
        rule_code="MEI-08",
        occurred_on=TODAY,
        household_ids=ids,
        now=now,
    )


def test_one_review_one_notice_row_and_each_household_posts_once(session, g, now):
    batch, made = award(session, g, now)
    assert sorted(c.household_id for c in made) == sorted(h.id for h in g.homes)
    assert {c.status for c in made} == {ClaimStatus.PENDING_REVIEW}
    claims.approve(session, claim=made[0], actor=g.reviewer, now=now)
    assert {c.status for c in made} == {ClaimStatus.IN_NOTICE}  # one review for all
    rows = public_notices(session, village=g.village, now=now)
    assert [(r["who"], r["group"], r["points"]) for r in rows] == [
        ("三组（卫生示范组）", "4 户，每户", 2)
    ]
    posted = claims.post_due(session, now=now + timedelta(days=7))
    assert len(posted) == 4 and {c.status for c in posted} == {ClaimStatus.POSTED}
    for home in g.homes:
        assert ledger.get_balance(session, scheme=g.scheme, subject_id=home.id).available == 2
    assert claims.post_due(session, now=now + timedelta(days=8)) == []
    assert verify(session).ok
    # "Each household +2 once": the same award again is refused, for the whole group.
    with pytest.raises(RuleRefusedError) as err:
        award(session, g, now)
    assert err.value.code == "once_done"


def test_an_objection_holds_the_group_and_if_upheld_rejects_it(session, g, now):
    _, made = award(session, g, now)
    claims.approve(session, claim=made[2], actor=g.reviewer, now=now)
    objection = claims.object_to(
        session, claim=made[0], actor=g.resident, reason="三组环境并未达标", now=now
    )
    assert claims.post_due(session, now=now + timedelta(days=7)) == []  # held, all four
    claims.resolve_objection(
        session, objection=objection, actor=g.reviewer, uphold=True, note="复查属实", now=now
    )
    assert {c.status for c in made} == {ClaimStatus.REJECTED}


def test_rejecting_in_review_rejects_the_group(session, g, now):
    _, made = award(session, g, now)
    claims.reject(session, claim=made[1], actor=g.reviewer, now=now, reason="未经镇里评定")
    assert {c.status for c in made} == {ClaimStatus.REJECTED}
    assert {c.review_note for c in made} == {"未经镇里评定"}
