"""Python work per HTTP record, counted: function calls (deterministic) and CPU per request for
one record and a 20-household batch, in process through Flask's test client.

    python bench/record_profile.py                      # SQLite file in a temporary folder
    python bench/record_profile.py --url postgresql://root@127.0.0.1/test
    python bench/record_profile.py --dump /tmp/prof     # also write cProfile listings
    POINTS_TREE=/path/to/other/checkout python bench/record_profile.py    # A/B: that tree's code

Instructions (deterministic, whatever the machine's load): under callgrind, one kind's
`--records` requests after the warm-up instrumented alone, e.g.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.single \
        python bench/record_profile.py --callgrind single
    callgrind_annotate /tmp/cg.single | head -3    # Ir: divide by --records (200 by default)

The requests are the ones `bench/http_record.py` sends (same village, rule and admin), and
`--bare` counts a bare one-INSERT Flask endpoint the same way. Counted calls do not depend on
the machine's load; the CPU times do (they are process time, medians of `--repeat` runs).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

# POINTS_TREE: count another checkout's code with this script (A/B against main).
ROOT = Path(os.environ.get("POINTS_TREE") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

from bench import http_record as hr  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="PostgreSQL URL (default: a fresh SQLite file)")
    p.add_argument("--records", type=int, default=200, help="requests counted per kind")
    p.add_argument("--repeat", type=int, default=5, help="unprofiled CPU runs (median)")
    p.add_argument("--dump", help="write cumulative/tottime listings to DUMP-{single,batch}.txt")
    p.add_argument("--bare", action="store_true", help="also count the bare one-INSERT app")
    p.add_argument(
        "--households",
        type=int,
        default=400,
        help="households in the village (the instruction count does not depend on it)",
    )
    p.add_argument(
        "--callgrind",
        choices=("bare", "single", "batch"),
        help="under valgrind --tool=callgrind --instr-atstart=no: instrument this kind only",
    )
    args = p.parse_args(argv)
    url, cleanup = hr.open_database(args.url)
    try:
        return _run(url, args)
    finally:
        cleanup()


def _run(url: str, args) -> int:
    ids = hr.setup(url, args.households)
    os.environ.update(POINTS_DATABASE_URL=url, POINTS_AUTO_MIGRATE="false")
    os.environ.setdefault("POINTS_SECRET_KEY", "bench")
    from api import create_app

    app = create_app()  # as served: its request log goes to stderr
    client = app.test_client()
    token = client.post(
        "/api/v1/auth/token", json={"username": "bench-admin", "password": hr.PASSWORD}
    ).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    day = "2026-11-20"
    counter = iter(range(10**9))

    def single():
        i = next(counter)
        body = {"household_id": ids[i % len(ids)], "rule_code": "ZZ-99", "occurred_on": day}
        r = client.post("/api/v1/villages/bench/claims", json=body, headers=headers)
        assert r.status_code == 201, r.json

    def batch():
        i = next(counter)
        subjects = [{"household_id": ids[(i * 20 + k) % len(ids)]} for k in range(20)]
        body = {"title": "清扫村道", "rule_code": "ZZ-99", "occurred_on": day, "subjects": subjects}
        r = client.post("/api/v1/villages/bench/claims/batch", json=body, headers=headers)
        assert r.status_code == 201, r.json

    kinds = [("single", single, 1), ("batch", batch, 20)]
    if args.bare or args.callgrind == "bare":
        kinds.insert(0, ("bare", _bare_client(url), 1))
    if args.callgrind:
        import subprocess

        name, fn, per = next(k for k in kinds if k[0] == args.callgrind)
        n = args.records if per == 1 else max(args.records // 10, 10)
        for _ in range(5):
            fn()
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
        for _ in range(n):
            fn()
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)
        print(f"{name}: {n} requests instrumented")
        return 0
    print(f"{'request':8} {'calls/request':>14} {'calls/claim':>12} {'CPU ms/request':>15}")
    for name, fn, per in kinds:
        n = args.records if per == 1 else max(args.records // 10, 10)
        for _ in range(5):
            fn()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(n):
            fn()
        profile.disable()
        stats = pstats.Stats(profile)
        calls = stats.total_calls / n
        cpu = []
        for _ in range(args.repeat):
            t0 = time.process_time()
            for _ in range(n):
                fn()
            cpu.append((time.process_time() - t0) / n * 1000)
        print(f"{name:8} {calls:14,.0f} {calls / per:12,.0f} {statistics.median(cpu):15.2f}")
        if args.dump:
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                stats.stream = out
                stats.sort_stats(order).print_stats()
                Path(f"{args.dump}-{name}-{order}.txt").write_text(out.getvalue())
    return 0


def _bare_client(url: str):
    namespace: dict = {"__name__": "bare_app", "__file__": __file__}
    os.environ["POINTS_DATABASE_URL"] = url
    exec(compile(hr.BARE_APP, "bare_app", "exec"), namespace)  # noqa: S102 - our own source
    client = namespace["app"].test_client()
    counter = iter(range(10**9))

    def bare():
        r = client.post("/bare", json={"household_id": next(counter)})
        assert r.status_code == 201

    return bare


if __name__ == "__main__":
    sys.exit(main())
