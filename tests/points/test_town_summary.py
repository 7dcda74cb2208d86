"""The town summary a supervisor reads: per village households, participation and totals, in
one statement however many villages the town has."""

from __future__ import annotations

from sqlalchemy import event

from points import ledger
from points.ledger.statements import town_summary
from tests.factories import make_group, make_household, make_scheme, make_village


def test_town_summary_figures_in_one_statement(session, engine, now):
    month = "2026-11"
    east = make_village(session, "east", town="城关镇")
    west = make_village(session, "west", town="城关镇")
    make_village(session, "far", town="河西镇")
    figures = {}
    for village, awards in ((east, [10, 5]), (west, [3])):
        scheme = make_scheme(session, village, redeemable=True)
        group = make_group(session, village)
        homes = [make_household(session, village, group) for _ in range(4)]
        for i, points in enumerate(awards):
            ledger.award(
                session,
                scheme=scheme,
                subject_id=homes[i].id,
                points=points,
                idem_key=f"a{i}",
                actor_id=None,
                now=now,
            )
        figures[village.code] = (scheme, homes)
    scheme, homes = figures["east"]
    ledger.deduct(
        session,
        scheme=scheme,
        subject_id=homes[0].id,
        points=4,
        idem_key="d",
        actor_id=None,
        now=now,
    )
    ledger.spend(
        session,
        scheme=scheme,
        subject_id=homes[1].id,
        points=2,
        idem_key="s",
        actor_id=None,
        now=now,
    )
    session.flush()

    seen = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        rows = town_summary(session, town="城关镇", month=month)
    finally:
        event.remove(engine, "before_cursor_execute", listener)

    assert len(seen) == 1, seen
    assert rows == [
        {
            "code": "east",
            "name": "east村",
            "households": 4,
            "active_households": 2,
            "participation_rate": 0.5,
            "awarded": 15,
            "deducted": 4,
            "redeemed": 2,
        },
        {
            "code": "west",
            "name": "west村",
            "households": 4,
            "active_households": 1,
            "participation_rate": 0.25,
            "awarded": 3,
            "deducted": 0,
            "redeemed": 0,
        },
    ]
    assert town_summary(session, town="河西镇", month="2026-10")[0]["households"] == 0
