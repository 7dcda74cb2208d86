"""A writer killed with SIGKILL in the middle of a large batch leaves no trace of it.

A child process (tests/points/ledger_crash_child.py) posts thousands of awards in ONE
transaction and is killed while writing. Afterwards the database holds none of the batch or
all of it (never an entry without its postings, never half a batch), verify passes, and the
next append continues the chain from the last committed head.
"""

from __future__ import annotations

import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import and_, func, select, text

from points import ledger
from points.ledger.verify import verify
from points.models import JournalEntry, Posting
from tests.factories import make_household, make_scheme, make_village
from tests.processes import TIMEOUT, Child

ROOT = Path(__file__).resolve().parents[2]
HOUSEHOLDS = 20

pytestmark = pytest.mark.slow


def batch_total(lines: int, household_index: int) -> int:
    """What the child's batch gives one household (line i: household i % 20, 1 + i % 5)."""
    return sum(1 + i % 5 for i in range(household_index, lines, HOUSEHOLDS))


@pytest.fixture
def village(session_factory, now):
    with session_factory() as s:
        v = make_village(s, code="crash")
        scheme = make_scheme(s, v)
        homes = [make_household(s, v, members=1).id for _ in range(HOUSEHOLDS)]
        ledger.award(
            s,
            scheme=scheme,
            subject_id=homes[0],
            points=7,
            idem_key="before",
            actor_id=None,
            now=now - timedelta(days=1),
        )
        s.commit()
        return dict(id=v.id, scheme=scheme, homes=homes, head=ledger.chain_head(s, v.id))


def run_and_kill(db_url, village, lines: int, mode: str, *, delay: float = 0.0) -> list[str]:
    """Start the child, wait for its marker line, SIGKILL it; return everything it printed."""
    child = Child(
        [
            sys.executable,
            "-m",
            "tests.points.ledger_crash_child",
            db_url,
            str(village["scheme"].id),
            ",".join(map(str, village["homes"])),
            str(lines),
            mode,
        ],
        cwd=ROOT,
    )
    marker = "started" if mode == "run" else "holding"
    child.expect_line(marker)  # or the test fails with the child's output
    time.sleep(delay)
    child.proc.send_signal(signal.SIGKILL)
    assert child.finish() == -signal.SIGKILL, child.stderr
    return [line.strip() for line in child.stdout.splitlines()]


def wait_for_server_to_drop(engine, out: list[str]) -> None:
    """PostgreSQL: wait until the killed client's server process has gone (and rolled back)."""
    pid = int(next(line.split()[1] for line in out if line.startswith("backend ")))
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            alive = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar_one()
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError(f"server process {pid} still alive {TIMEOUT:g} s after its client died")


def check_after_crash(session_factory, village, now, lines: int, *, expect: str | None) -> str:
    """Assert none-or-all of the batch, verify, and that the chain continues; return which."""
    vid, scheme, homes = village["id"], village["scheme"], village["homes"]
    with session_factory() as s:
        found = s.execute(
            select(func.count()).where(
                JournalEntry.village_id == vid, JournalEntry.idem_key.like("crash:%")
            )
        ).scalar_one()
        assert found in (0, lines), f"a partial batch survived: {found} of {lines} entries"
        outcome = "none" if found == 0 else "all"
        if expect:
            assert outcome == expect
        orphans = s.execute(
            select(func.count())
            .select_from(JournalEntry)
            .outerjoin(
                Posting,
                and_(
                    Posting.entry_id == JournalEntry.id,
                    Posting.village_id == JournalEntry.village_id,
                ),
            )
            .where(Posting.id.is_(None))
        ).scalar_one()
        assert orphans == 0, "an entry without its postings"
        head = ledger.chain_head(s, vid)
        if found == 0:
            assert head == village["head"]
        else:
            assert head[0] == village["head"][0] + lines
        for i in (0, 1, HOUSEHOLDS - 1):
            balance = ledger.get_balance(s, scheme=scheme, subject_id=homes[i])
            expected = (7 if i == 0 else 0) + (batch_total(lines, i) if found else 0)
            assert (balance.available, balance.owed) == (expected, 0)
        report = verify(s)
        assert report.breaches == []
        assert report.entries == head[0]

        # the next append continues the chain from the last committed head
        entry = ledger.award(
            s,
            scheme=scheme,
            subject_id=homes[3],
            points=9,
            idem_key="after",
            actor_id=None,
            now=now + timedelta(hours=2),
        )
        assert (entry.seq, entry.prev_hash) == (head[0] + 1, head[1])
        s.commit()
        report = verify(s)
        assert report.breaches == [] and report.heads["crash"][0] == head[0] + 1
        # and a retried batch (same keys) after the crash either posts or replays: no error
        again = ledger.post_awards(
            s,
            scheme=scheme,
            lines=[ledger.AwardLine(homes[0], 1, "crash:0", memo="批量导入")],
            actor_id=None,
            now=now,
        )
        assert len(again) == 1
        s.rollback()
    return outcome


def test_killed_after_inserting_20000_entries_but_before_their_postings(
    db_url, engine, session_factory, village, now
):
    out = run_and_kill(db_url, village, 20_000, "hold-postings")
    assert "committed" not in out
    wait_for_server_to_drop(engine, out)
    check_after_crash(session_factory, village, now, 20_000, expect="none")


def test_killed_with_everything_written_just_before_commit(
    db_url, engine, session_factory, village, now
):
    out = run_and_kill(db_url, village, 2_000, "hold-commit")
    wait_for_server_to_drop(engine, out)
    check_after_crash(session_factory, village, now, 2_000, expect="none")


def test_killed_while_the_insert_of_20000_entries_is_running(
    db_url, engine, session_factory, village, now
):
    out = run_and_kill(db_url, village, 20_000, "run", delay=0.1)
    wait_for_server_to_drop(engine, out)
    # The kill lands during the INSERT: nothing can have been committed. Should a very fast
    # machine commit within 0.1 s, the whole batch must be there: never a part of it.
    outcome = check_after_crash(session_factory, village, now, 20_000, expect=None)
    if "committed" in out:
        assert outcome == "all"
