"""Work of one county operation, counted: statements sent, Python function calls (both
deterministic) and process CPU, on a county `bench/county.py` built and kept.

    python bench/county.py --villages 40 --url sqlite:////tmp/county.db --build-only
    python bench/county_profile.py --url sqlite:////tmp/county.db --op close
    python bench/county.py --villages 20 --url postgresql://root@127.0.0.1/test --build-only --keep
    python bench/county_profile.py --url postgresql://root@127.0.0.1/bench_… --op board-one
    python bench/county_profile.py --url … --op close --dump /tmp/prof    # cProfile listings
    POINTS_TREE=/path/to/other/checkout python bench/county_profile.py …  # that tree's code

Each run is the operation `bench/county.py` times as "ours" (`--op close`: the quarter close
of every village; `board-one`, `board-all`: the board drafts; `--raw`: its raw SQL side, so
that the two sides' instructions compare), in a transaction rolled back,
so the county is the same for every run. Two runs warm the caches and are not counted (a
statement holding a prebuilt ORM subquery compiles again on its second run); then one profiled run (calls), one counted run (statements: an executemany counts once) and
`--repeat` timed runs (CPU of this process, so SQLite's own work too; median). `--sql` prints
the statements of the counted run, shortened.

Instructions, under callgrind (one run after the warm-up, instrumented alone; nothing else):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \
        python bench/county_profile.py --url sqlite:////tmp/county.db --op close --callgrind
    callgrind_annotate /tmp/cg.out | head -40
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("POINTS_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from bench import county  # noqa: E402
from points.db import make_engine, make_sessionmaker  # noqa: E402


def operations(raw: bool = False):
    """The operations `bench/county.py` times as ours (or, `raw`, its raw SQL side), by name."""
    found = {}

    class Grab:
        def __init__(self):
            self.repeat, self.only = 0, []

        def pair(self, name, ours, raw_side, *, write=False):
            found[name] = raw_side if raw else ours

        def wants(self, name):
            return False  # stop before the statements' untimed close

    county.run_ops(Grab(), None)
    return {
        "close": found["quarter close, all villages"],
        "board-one": found["board draft, one village"],
        "board-all": found["board draft, all villages"],
        "verify-one": found["verify, one village"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="a county built by bench/county.py")
    p.add_argument("--op", required=True, choices=sorted(operations()))
    p.add_argument("--raw", action="store_true", help="count the raw SQL side instead of ours")
    p.add_argument("--repeat", type=int, default=5, help="timed runs (median)")
    p.add_argument("--dump", help="write cumulative/tottime listings to DUMP-{op}-{order}.txt")
    p.add_argument("--sql", action="store_true", help="print the counted run's statements")
    p.add_argument(
        "--callgrind",
        action="store_true",
        help="under valgrind --tool=callgrind --instr-atstart=no: instrument one run only",
    )
    args = p.parse_args(argv)
    op = operations(args.raw)[args.op]
    engine = make_engine(args.url)
    with engine.begin() as conn:  # fresh statistics, as county.py takes them before timing
        conn.exec_driver_sql("ANALYZE")
    sessions = make_sessionmaker(engine)

    def once():
        with sessions() as s:
            op(s)
            s.rollback()

    once()
    once()
    if args.callgrind:

        def instrument(state: str) -> None:
            subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True)

        instrument("on")
        once()
        instrument("off")
        engine.dispose()
        return 0
    profile = cProfile.Profile()
    profile.enable()
    once()
    profile.disable()
    stats = pstats.Stats(profile)

    sent: list[tuple[str, bool]] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, executemany))

    event.listen(engine, "before_cursor_execute", count)
    once()
    event.remove(engine, "before_cursor_execute", count)

    cpu, wall = [], []
    for _ in range(args.repeat):
        t0, w0 = time.process_time(), time.perf_counter()
        once()
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
    many = sum(1 for _, m in sent if m)
    print(
        f"{args.op}: {len(sent)} statements ({many} executemany), "
        f"{stats.total_calls:,} Python calls, CPU median {statistics.median(cpu):.3f} s "
        f"(wall {statistics.median(wall):.3f} s; {args.repeat} runs)"
    )
    if args.sql:
        for statement, m in sent:
            flat = " ".join(statement.split())
            print(f"  {'many ' if m else ''}{flat[:160]}")
    if args.dump:
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            stats.stream = out
            stats.sort_stats(order).print_stats(60)
            Path(f"{args.dump}-{args.op}-{order}.txt").write_text(out.getvalue())
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
