"""Set-based work: the statements a close, a board draft and the scheduler's planning send do
not grow with the number of households or villages (counted, not timed: bench/county.py times
them). A per-household or per-village query coming back would make these fail."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import select

from points import boards, cycles, ledger
from points.ledger.verify import verify
from points.models import Household, Scheme
from tests.factories import make_group, make_household, make_scheme, make_village
from tests.points.test_cycles import bj

NOV = bj(2026, 11, 10, 9)


@contextmanager
def counting(engine):
    """Collect the statements sent inside the block (transaction control left out)."""
    from sqlalchemy import event

    seen: list[str] = []

    def listener(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def _village(session, households: int, *, policy="reset"):
    village = make_village(session)
    group = make_group(session, village)
    scheme = make_scheme(session, village, close_policy=policy)
    homes = [make_household(session, village, group, members=1) for _ in range(households)]
    ledger.post_awards(
        session,
        scheme=scheme,
        lines=[ledger.AwardLine(h.id, 3 + i % 7, f"a:{h.id}") for i, h in enumerate(homes)],
        actor_id=None,
        now=NOV,
    )
    ledger.deduct(
        session,
        scheme=scheme,
        subject_id=homes[0].id,
        points=1,
        idem_key="d",
        actor_id=None,
        now=NOV,
    )
    return village, scheme, homes


def test_closing_a_quarter_sends_the_same_statements_for_12_or_120_households(session, engine):
    counts = []
    for n in (12, 120):
        _, scheme, homes = _village(session, n)
        with counting(engine) as seen:
            row = cycles.close_period(session, scheme=scheme, period="2026-Q4", now=bj(2027, 1, 1))
        counts.append(len(seen))
        assert row.lots_closed == n
        assert row.points_expired == sum(3 + i % 7 for i in range(n)) - 1
        assert ledger.get_balance(session, scheme=scheme, subject_id=homes[-1].id).available == 0
    assert counts[0] == counts[1], counts
    # Replaying is a no-op, and the chain and every balance still check out.
    again = cycles.close_period(session, scheme=scheme, period="2026-Q4", now=bj(2027, 1, 2))
    assert again.lots_closed == 120
    assert verify(session).ok


def test_drafting_a_board_sends_the_same_statements_for_12_or_120_households(session, engine):
    counts = []
    for n in (12, 120):
        village, _, homes = _village(session, n)
        village.board_top_n = 200  # everyone is ranked: per-household work would show
        session.flush()
        with counting(engine) as seen:
            board = boards.draft_board(
                session, village=village, month="2026-11", now=bj(2026, 12, 2)
            )
        counts.append(len(seen))
        top = sorted((e for e in board.entries if e.section == "top"), key=lambda e: e.rank)
        assert len(top) == n
        # 9 points is the most (3 + 6); on a tie the lower household number ranks first.
        assert top[0].score == 9 and top[0].stars == 0
        ranked = [(-e.score, int(session.get(Household, e.household_id).number)) for e in top]
        assert ranked == sorted(ranked)
    assert counts[0] == counts[1], counts


def test_the_scheduler_plans_3_or_12_villages_with_the_same_statements(session, engine):
    counts = []
    for n in (3, 9):
        for _ in range(n):
            _village(session, 2)
        with counting(engine) as seen:
            due = cycles.pending(session, now=bj(2027, 1, 1, 0, 5))
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    closes = [i for i in due if i.job == cycles.PERIOD_CLOSE]
    assert len(closes) == 12 and {i.key for i in closes} == {"household:2026-Q4"}


def _roster(first: int, households: int) -> list[tuple[int, dict]]:
    rows, line = [], 2
    for h in range(first, first + households):
        for m in range(3):
            rows.append(
                (
                    line,
                    {
                        "number": f"{h:04d}",
                        "group": f"{h % 4 + 1}组",
                        "name": f"村民{h}-{m}",
                        "is_head": "是" if m == 1 else "否",
                        "phone": f"139{h:04d}{m:04d}" if m == 0 else "",
                        "is_party_member": "是" if m == 2 else "否",
                        "opening": 10 if m == 0 else None,
                    },
                )
            )
            line += 1
    return rows


def test_a_roster_import_sends_the_same_statements_for_30_or_300_households(session, engine):
    from points.models import Resident
    from points.org.roster import import_roster

    counts = []
    for first, n in ((0, 30), (1000, 300)):
        village = make_village(session)
        make_scheme(session, village, redeemable=True)
        with counting(engine) as seen:
            result = import_roster(
                session, village=village, rows=_roster(first, n), actor_id=None, now=NOV
            )
        counts.append(len(seen))
        assert (result.households, result.residents, result.opening_entries) == (n, 3 * n, n)
    assert counts[0] == counts[1], counts
    home = session.scalars(select(Household).where(Household.number == "1007")).one()
    members = session.scalars(
        select(Resident).where(Resident.household_id == home.id).order_by(Resident.id)
    ).all()
    assert [m.name for m in members] == ["村民1007-0", "村民1007-1", "村民1007-2"]
    assert home.head_id == members[1].id and members[2].is_party_member
    assert members[0].phone == "13910070000" and members[1].phone is None
    scheme = session.scalars(select(Scheme).where(Scheme.village_id == village.id)).one()
    assert ledger.get_balance(session, scheme=scheme, subject_id=home.id).available == 10


def test_a_batch_s_claims_are_found_by_index_not_by_reading_every_claim(session):
    # Every batch record reads back its new claims by batch_id; without an index that read
    # scanned the whole claims table, so a county's batches got slower as claims piled up.
    from points.claims.workflow import _BATCH_IDS

    dialect = session.get_bind().dialect
    sql = str(_BATCH_IDS.compile(dialect=dialect))
    conn = session.connection()
    if dialect.name == "sqlite":
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (1,)))
    else:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: ask for the index
        sql = sql.replace("%(batch_id)s", "1")
        plan = " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "ix_claims_batch_id" in plan, plan
