"""A reconciler of automatic rules in a process of its own, for tests/points/test_rules_auto.py.

    python -m tests.points.auto_child DB_URL NOW_ISO NAME [pause]

Runs only the `rules_auto` job at NOW in one transaction and commits, printing one JSON line of
results. With `pause` it stops after its first evaluation (claims inserted, not committed),
prints "midway" and waits for a line on stdin.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from points import cycles
from points.claims import automatic
from points.db import make_engine, make_sessionmaker


def main(url: str, now_text: str, name: str, pause: bool) -> None:
    now = datetime.fromisoformat(now_text)
    if pause:
        real, seen = automatic.evaluate, [0]

        def evaluate_then_pause(*args, **kwargs):
            made = real(*args, **kwargs)
            seen[0] += 1
            if seen[0] == 1:
                print("midway", flush=True)
                sys.stdin.readline()
            return made

        automatic.evaluate = evaluate_then_pause
    cycles.registered_jobs()
    cycles.jobs._JOBS = {k: v for k, v in cycles.jobs._JOBS.items() if k == automatic.JOB}
    connect_args = {"application_name": name} if url.startswith("postgresql") else {}
    engine = make_engine(url, connect_args=connect_args)
    with make_sessionmaker(engine)() as session:
        report = cycles.reconcile(session, now=now)
        session.commit()
    print(json.dumps([[r.item.key, r.status] for r in report.results]), flush=True)
    engine.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], args[2], len(args) > 3 and args[3] == "pause")
