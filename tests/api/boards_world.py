"""Fresh boards in a given state, for tests that use one up per call (approve, publish…)."""

from __future__ import annotations

import itertools

from points import boards
from points.db import utcnow
from points.models import Village
from points.org.access import load_actor

# Each fresh board takes its own past month: one live board per village and month.
_months = itertools.count(0)


def fresh_board(app, world, state: str = "published", *, home=None) -> tuple[int, int]:
    """Create a board in village A with a nomination for `home` (default household 1).

    States: draft, approved, published. Returns (board id, the nomination's entry id).
    """
    n = next(_months)
    month = f"{2000 + n // 12:04d}-{n % 12 + 1:02d}"
    home = home or world.home1
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        admin = load_actor(s, world.users["admin"].id)
        board = boards.draft_board(s, village=village, month=month, now=utcnow())
        entry = boards.add_nomination(
            s, board=board, actor=admin, household_id=home.id, text="照顾孤寡老人"
        )
        if state in ("approved", "published"):
            boards.approve_board(s, board=board, actor=admin, now=utcnow())
        if state == "published":
            boards.publish_board(s, board=board, actor=admin, now=utcnow())
        return board.id, entry.id


def open_appeal(app, world) -> int:
    """Create an open appeal by the resident against an entry about their household."""
    board_id, entry_id = fresh_board(app, world)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        from points.models import Board

        resident = load_actor(s, world.users["resident"].id)
        return boards.appeal(
            s,
            board=s.get(Board, board_id),
            entry_id=entry_id,
            actor=resident,
            reason="不属实",
            now=utcnow(),
        ).id


BOARD_STATE = {
    "/approve": "draft",
    "/nominations": "draft",
    "/remove": "draft",
    "/publish": "approved",
}


def board_ids(app, world, rule: str) -> tuple[str, str]:
    """Return (board id, entry id) for a matrix rule: a fresh board in the state it needs."""
    if "<int:board_id>" not in rule:
        return "<int:board_id>", "<int:entry_id>"
    state = next((s for suffix, s in BOARD_STATE.items() if rule.endswith(suffix)), "published")
    board_id, entry_id = fresh_board(app, world, state)
    return str(board_id), str(entry_id)
