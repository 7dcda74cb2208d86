"""The demo village tells the story on its first day: printed residents can redeem, the last
month's 黑榜 has entries on a drafted board, a claim in 公示 has an open objection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from points import boards, shop
from points.ledger.verify import verify
from points.models import Claim, Household, Objection
from points.models.claims import ClaimStatus
from points.shop import redemption
from points.shop.redemption import BasketLine


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 25, 5, 0, tzinfo=UTC),  # mid-quarter
        datetime(2026, 12, 1, 2, 0, tzinfo=UTC),  # the first day of a month
    ],
)
def test_a_printed_resident_redeems_today_and_the_black_list_is_not_empty(session, now):
    from points.demo import create_demo_village

    result = create_demo_village(session, now=now, households=12, months=3)
    village = result.village
    (store,) = shop.list_stores(session, village=village)
    soap = next(g for g in shop.list_goods(session, store=store) if g.name == "肥皂")
    printed = result.resident_logins
    assert len(printed) == 3 and all(len(p["pin"]) == 6 for p in printed)
    able = []
    for login in printed:
        home = session.execute(
            select(Household).where(
                Household.village_id == village.id, Household.number == login["household"]
            )
        ).scalar_one()
        check = redemption.preview(
            session,
            village=village,
            store=store,
            household=home,
            basket=[BasketLine(soap.id, 1)],
            now=now,
        )
        assert check.can_redeem == login["can_redeem"]  # the printout tells the truth
        able.append(check.can_redeem)
    assert any(able)

    board = boards.live_board(session, village=village, month=result.board_month)
    assert board is not None and board.status == "draft"
    black = [e for e in board.entries if e.kind == "black"]
    assert black and all(e.text == "参与赌博" for e in black)
    party = [e for e in board.entries if e.section == "party"]
    assert party and all(e.stars >= 1 for e in party)  # party members with stars

    (objection,) = session.execute(select(Objection)).scalars().all()
    assert objection.status == "open"
    assert session.get(Claim, objection.claim_id).status == ClaimStatus.IN_NOTICE
    assert verify(session).ok
