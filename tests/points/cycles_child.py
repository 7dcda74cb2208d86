"""A reconciler in a process of its own, for tests/points/test_cycles_processes.py.

    python -m tests.points.cycles_child DB_URL NOW_ISO NAME [PAUSE_AFTER]

Runs `cycles.reconcile` at NOW in one transaction and commits, printing one JSON line of
results. With PAUSE_AFTER it stops after the first batch of that many lots was expired, prints "midway", and
waits for a line on stdin before going on (the test either lets it go on, or kills it there).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from points import cycles, ledger
from points.db import make_engine, make_sessionmaker


def main(url: str, now_text: str, name: str, pause_after: int | None = None) -> None:
    now = datetime.fromisoformat(now_text)
    if pause_after is not None:
        # The close expires lots in batches: make the first batch end where we pause.
        from points.cycles import closing

        closing.CLOSE_BATCH = pause_after
        real_expire = ledger.expire_locked

        def expire_then_pause(*args, **kwargs):
            done = real_expire(*args, **kwargs)
            print("midway", flush=True)
            sys.stdin.readline()
            ledger.expire_locked = real_expire
            return done

        ledger.expire_locked = expire_then_pause
    # Only the period jobs: this child stands in for a reconciler closing a period.
    cycles.registered_jobs()
    cycles.jobs._JOBS = {k: v for k, v in cycles.jobs._JOBS.items() if k.startswith("period_")}
    connect_args = {"application_name": name} if url.startswith("postgresql") else {}
    engine = make_engine(url, connect_args=connect_args)
    with make_sessionmaker(engine)() as session:
        report = cycles.reconcile(session, now=now)
        session.commit()
    print(json.dumps([[r.item.job, r.item.key, r.status] for r in report.results]), flush=True)
    engine.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], args[2], int(args[3]) if len(args) > 3 else None)
