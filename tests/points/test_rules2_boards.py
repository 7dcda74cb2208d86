"""一票否决 on the boards, and maker ≠ checker for boards, through real claims on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from points import boards, claims, ledger
from points.claims import ClaimInput
from points.errors import ConflictError, PermissionDeniedError
from points.models.boards import Section
from points.models.claims import ClaimStatus
from tests.factories import adopt_catalog, make_household, make_scheme, make_user, make_village
from tests.points.test_cycles import bj

BASE = {"unit": "time", "recorder_roles": ["admin", "recorder"], "subjects": ["household"]}
RULES = [
    dict(BASE, code="SHAN-01", name="善行义举", category="德治", sign=1, points=20,
         review="never", honourable=True),
    dict(BASE, code="FZ-52", name="聚众赌博", category="法治", sign=-1, points=5,
         review="always", veto="year"),
    dict(BASE, code="MEI-51", name="乱倒垃圾", category="德治", sign=-1, points=2, review="always"),
]  # fmt: skip
DRAFT_AT = datetime(2026, 11, 2, 2, tzinfo=UTC)


@pytest.fixture
def t(session):
    class T:
        pass

    x = T()
    x.village = make_village(session)
    x.scheme = make_scheme(session, x.village, notice_days=7, star_thresholds=[10, 20, 30, 40, 50])
    adopt_catalog(session, x.scheme, RULES, now=bj(2026, 1, 1, 9))
    x.gambler, x.litterer, x.neighbour = (make_household(session, x.village) for _ in range(3))
    x.recorder = make_user(session, x.village, "recorder")
    x.reviewer = make_user(session, x.village, "reviewer")
    x.admin = make_user(session, x.village, "admin")
    x.admin2 = make_user(session, x.village, "admin")

    def act(home, code, day):
        now = bj(day.year, day.month, day.day, 9)
        item = ClaimInput(household_id=home.id, rule_code=code, occurred_on=day, description="核实")
        c = claims.record(
            session, village=x.village, scheme=x.scheme, actor=x.recorder, item=item, now=now
        )
        if c.status == ClaimStatus.PENDING_REVIEW:
            claims.approve(session, claim=c, actor=x.reviewer, now=now)
        return claims.post_claim(session, claim_id=c.id, now=now + timedelta(days=7))

    x.veto_claim = act(x.gambler, "FZ-52", date(2026, 3, 5))  # March: still bars October
    act(x.litterer, "MEI-51", date(2026, 10, 2))  # an ordinary deduction bars nothing
    for home in (x.gambler, x.litterer, x.neighbour):
        act(home, "SHAN-01", date(2026, 10, 1))
    return x


def test_a_veto_keeps_the_household_off_the_red_board_and_its_stars_for_the_year(session, t):
    board = boards.draft_board(session, village=t.village, month="2026-10", now=DRAFT_AT)
    top = {e.household_id for e in board.entries if e.section == Section.TOP}
    deeds = {e.household_id for e in board.entries if e.section == Section.DEED}
    assert top == deeds == {t.litterer.id, t.neighbour.id}
    with pytest.raises(ConflictError) as err:
        boards.add_nomination(
            session, board=board, actor=t.admin, household_id=t.gambler.id, text="热心"
        )
    assert "一票否决" in err.value.message and "聚众赌博" in err.value.message
    period = ledger.period_score  # the score itself is untouched; only honours are barred
    assert period(session, scheme=t.scheme, subject_id=t.gambler.id, period="2026-Q4") == 20
    assert (
        boards.subject_stars(session, scheme=t.scheme, subject_id=t.gambler.id, period="2026-Q4")
        == 0
    )
    assert (
        boards.subject_stars(session, scheme=t.scheme, subject_id=t.neighbour.id, period="2026-Q4")
        == 2
    )
    # Never from redeeming: what was earned stays spendable (20 earned, less the 5 owed).
    assert ledger.get_balance(session, scheme=t.scheme, subject_id=t.gambler.id).available == 15


def test_a_veto_ends_with_its_window_and_with_a_reversal(session, t):
    next_year = boards.draft_board(
        session, village=t.village, month="2027-01", now=datetime(2027, 2, 2, 2, tzinfo=UTC)
    )
    assert t.gambler.id not in {e.household_id for e in next_year.entries}  # no January deeds
    assert claims.vetoed(session, scheme=t.scheme, on=date(2027, 1, 1)) == {}
    assert t.gambler.id in claims.vetoed(session, scheme=t.scheme, on=date(2026, 12, 31))
    claims.reverse_claim(
        session, claim=t.veto_claim, actor=t.admin, reason="认定有误", now=bj(2026, 11, 1, 9)
    )
    assert claims.vetoed(session, scheme=t.scheme, on=date(2026, 10, 1)) == {}


def test_the_admin_who_drafted_a_board_cannot_approve_it(session, t):
    board = boards.draft_board(
        session, village=t.village, month="2026-10", now=DRAFT_AT, actor_id=t.admin.user_id
    )
    with pytest.raises(PermissionDeniedError) as err:
        boards.approve_board(session, board=board, actor=t.admin, now=DRAFT_AT)
    assert "起草本榜的人不能审定本榜" in err.value.message
    assert (
        boards.approve_board(session, board=board, actor=t.admin2, now=DRAFT_AT).status
        == "approved"
    )
