"""A process that posts one large award batch in ONE transaction, to be killed mid-way.

    python -m tests.points.ledger_crash_child URL SCHEME_ID HOUSEHOLD_IDS LINES MODE

MODE says where it stops to be killed (it prints a marker line, then blocks):
  hold-postings  after all entries are inserted, before the first posting is
  hold-commit    after everything is written, just before COMMIT
  run            never: it prints `started` when the entries' INSERT begins and goes on

It prints `backend <pid>` first (PostgreSQL: the server process serving it, so the parent
can wait for the server to notice the death) and `committed` if it ever gets that far.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from sqlalchemy import event, text

from points import ledger
from points.db import make_engine, make_sessionmaker
from points.models import Scheme

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def say(line: str) -> None:
    print(line, flush=True)


def main(url: str, scheme_id: str, households: str, lines: str, mode: str) -> None:
    engine = make_engine(url)
    homes = [int(h) for h in households.split(",")]

    @event.listens_for(engine, "before_cursor_execute")
    def _watch(conn, cursor, statement, params, context, executemany):
        if statement.startswith("INSERT INTO journal_entries") and mode == "run":
            say("started")
        if statement.startswith("INSERT INTO postings") and mode == "hold-postings":
            say("holding")
            time.sleep(600)

    @event.listens_for(engine, "commit")
    def _commit(conn):
        if mode == "hold-commit":
            say("holding")
            time.sleep(600)

    with make_sessionmaker(engine)() as session:
        if engine.dialect.name == "postgresql":
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        else:
            pid = 0
        say(f"backend {pid}")
        scheme = session.get(Scheme, int(scheme_id))
        batch = [
            ledger.AwardLine(homes[i % len(homes)], 1 + i % 5, f"crash:{i}", memo="批量导入")
            for i in range(int(lines))
        ]
        ledger.post_awards(session, scheme=scheme, lines=batch, actor_id=None, now=NOW)
        session.commit()
    say("committed")


if __name__ == "__main__":
    main(*sys.argv[1:])
