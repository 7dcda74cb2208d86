"""County scale: build a county through the project's own bulk paths, then time each operation
against the raw SQL that computes the same result, interleaved.

    python bench/county.py                                   # SQLite, 200 villages x 500 households
    python bench/county.py --villages 20 --households 100    # a quick run
    python bench/county.py --villages 20 --only board        # only the board pairs
    python bench/county.py --url postgresql://root@127.0.0.1/test
    python bench/county.py --villages 20 --only close          # the quarter close pair alone
    python bench/county.py --citus --url postgresql://postgres@127.0.0.1:6432/postgres
                                  # a Citus coordinator (scripts/citus-cluster.sh start): the
                                  # database is emptied, migrated, distributed, and kept after the
                                  # run so that `points verify` can check it (docs/deploy.md)

The county: `--villages` villages in towns of 10, each with one redeemable household scheme
(quarterly, `reset`) and a roster of `--households` households of three residents imported with
`points.org.roster.import_roster`; over 2026-Q4 each household gets `--awards` awards through
`points.ledger.post_awards` (batches of 1,000, spread over October to December), a few
deductions and redemptions per village go through `ledger.deduct` / `ledger.spend`. Defaults
give 100,000 households and ~1,000,000 journal entries.

Each operation runs on both sides `--repeat` times, alternating (ours, raw, ours, raw, …) in
one process and one database, so load from other processes hits both alike; the figure to read
is the ratio of the medians. Work that writes (board drafts, the quarter close) runs in a
transaction that is rolled back, on both sides, so each repeat sees the same county. Peak RSS
is this process's high-water mark after the operation (getrusage; the server's memory is not
in it); run two sizes to see whether it grows with N.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, make_url, select, text  # noqa: E402

from api.migrate import upgrade  # noqa: E402
from points import boards, cycles, ledger  # noqa: E402
from points.cycles.statements import period_statements  # noqa: E402
from points.db import make_engine, make_sessionmaker  # noqa: E402
from points.ledger.statements import town_summary  # noqa: E402
from points.ledger.verify import verify  # noqa: E402
from points.models import Scheme, Village  # noqa: E402
from points.org.roster import import_roster  # noqa: E402
from points.periods import LOCAL_TZ  # noqa: E402

MONTHS = [(2026, 10), (2026, 11), (2026, 12)]
CLOSE_AT = datetime(2027, 1, 1, 0, 5, tzinfo=LOCAL_TZ)
BOARD_MONTH, PERIOD = "2026-12", "2026-Q4"


# --- the county, through the project's own paths -----------------------------------------------


def roster_rows(households: int) -> list[tuple[int, dict]]:
    rows, line = [], 2
    for h in range(households):
        for m in range(3):
            rows.append(
                (
                    line,
                    {
                        "number": f"{h + 1:04d}",
                        "group": f"{h // 125 + 1}组",
                        "name": f"村民{h}-{m}",
                        "is_head": "是" if m == 0 else "否",
                        "is_party_member": "是" if m == 2 and h % 10 == 0 else "否",
                    },
                )
            )
            line += 1
    return rows


# The tables the build fills (each grows by the same 10 % between two stand-in ANALYZEs).
GROWN_TABLES = (
    "villages",
    "schemes",
    "groups",
    "households",
    "residents",
    "accounts",
    "journal_entries",
    "postings",
    "chain_heads",
)


def build(engine: Engine, args) -> dict:
    sessions = make_sessionmaker(engine)
    rng = random.Random(7)
    timings = {"roster": 0.0, "awards": 0.0, "other": 0.0, "analyze": 0.0}
    entries = 0
    # A server with autovacuum off (the CI server here) never learns that the tables grew;
    # stand in for autovacuum's ANALYZE by its own rule (50 + 10 % more rows), timed with the
    # build. Production PostgreSQL runs autovacuum, which analyses the tables that grew, not
    # the system catalogs and the empty tables: so does the stand-in.
    stand_in = engine.dialect.name == "postgresql"
    if stand_in:
        with engine.connect() as conn:
            stand_in = conn.exec_driver_sql("SHOW autovacuum").scalar() == "off"
    analysed = 0
    for v in range(args.villages):
        with sessions.begin() as s:
            village = Village(
                code=f"c{v:04d}", name=f"第{v}村", town=f"镇{v // 10:02d}", county="示范县"
            )
            s.add(village)
            s.flush()
            scheme = Scheme(
                village_id=village.id,
                code="household",
                name="户积分",
                subject_kind="household",
                period_kind="quarter",
                close_policy="reset",
                redeemable=True,
            )
            s.add(scheme)
            s.flush()
            t0 = time.perf_counter()
            import_roster(
                s,
                village=village,
                rows=roster_rows(args.households),
                actor_id=None,
                now=datetime(2026, 10, 1, 1, tzinfo=UTC),
            )
            timings["roster"] += time.perf_counter() - t0
            homes = list(
                s.execute(
                    text("SELECT id FROM households WHERE village_id = :v ORDER BY id"),
                    {"v": village.id},
                ).scalars()
            )
            t0 = time.perf_counter()
            lines = []
            for k in range(args.awards):
                year, month = MONTHS[k * len(MONTHS) // args.awards]
                when = datetime(year, month, 1 + k % 27, 2, tzinfo=UTC)
                for hid in homes:
                    lines.append(
                        (when, ledger.AwardLine(hid, rng.randint(1, 10), f"a{k}:{hid}", "好人好事"))
                    )
            for i in range(0, len(lines), 1000):
                chunk = lines[i : i + 1000]
                ledger.post_awards(
                    s,
                    scheme=scheme,
                    lines=[line for _, line in chunk],
                    actor_id=None,
                    now=chunk[0][0],
                )
            entries += len(lines)
            timings["awards"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            for j, hid in enumerate(homes[:5]):
                when = datetime(2026, 12, 10 + j, 3, tzinfo=UTC)
                ledger.deduct(
                    s,
                    scheme=scheme,
                    subject_id=hid,
                    points=2,
                    idem_key=f"d{hid}",
                    actor_id=None,
                    now=when,
                    memo="违反村规民约",
                    category="法治",
                )
                ledger.spend(
                    s,
                    scheme=scheme,
                    subject_id=homes[-1 - j],
                    points=3,
                    idem_key=f"s{hid}",
                    actor_id=None,
                    now=when,
                    memo="兑换肥皂",
                )
                entries += 2
            # The `expired` account exists before either side's close (the raw side needs it).
            ledger.journal._system_account(s, village.id, ledger.journal.AccountKind.EXPIRED)
            timings["other"] += time.perf_counter() - t0
        if stand_in and entries > 50 + 1.1 * analysed:
            t0 = time.perf_counter()
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ANALYZE {', '.join(GROWN_TABLES)}")
            timings["analyze"] += time.perf_counter() - t0
            analysed = entries
        if args.progress and (v + 1) % args.progress == 0:
            print(f"  built {v + 1} villages, {entries:,} entries", flush=True)
    return {"entries": entries, **timings}


# --- raw SQL computing the same results --------------------------------------------------------

RAW_BOARD = """
SELECT je.household_id, h.number,
       SUM(CASE WHEN je.month = :m THEN je.score_delta ELSE 0 END) AS ms,
       SUM(CASE WHEN je.month = :m AND je.kind = 'deduction' THEN 1 ELSE 0 END) AS ded,
       SUM(CASE WHEN je.period_key = :p AND je.resident_id IS NULL THEN je.score_delta ELSE 0 END)
FROM journal_entries je JOIN households h ON h.id = je.household_id AND h.village_id = je.village_id
WHERE je.scheme_id IN ({schemes}) AND (je.month = :m OR je.period_key = :p) AND h.active
GROUP BY je.scheme_id, je.household_id, h.number
HAVING SUM(CASE WHEN je.month = :m THEN je.score_delta ELSE 0 END) > 0
ORDER BY ms DESC, ded
"""

RAW_TOWN = """
SELECT v.code, v.name, coalesce(h.n, 0), coalesce(j.active, 0), coalesce(j.awarded, 0),
       coalesce(j.deducted, 0), coalesce(r.redeemed, 0)
FROM villages v
LEFT JOIN (SELECT village_id, count(*) AS n FROM households
           WHERE village_id IN (SELECT id FROM villages WHERE town = :t) GROUP BY village_id) h
       ON h.village_id = v.id
LEFT JOIN (SELECT village_id,
                  count(DISTINCT CASE WHEN kind = 'award' THEN household_id END) AS active,
                  sum(CASE WHEN kind = 'award' THEN score_delta ELSE 0 END) AS awarded,
                  sum(CASE WHEN kind = 'deduction' THEN -score_delta ELSE 0 END) AS deducted
           FROM journal_entries
           WHERE village_id IN (SELECT id FROM villages WHERE town = :t) AND month = :m
           GROUP BY village_id) j
       ON j.village_id = v.id
LEFT JOIN (SELECT p.village_id, sum(p.amount) AS redeemed FROM postings p
             JOIN journal_entries e ON e.id = p.entry_id AND e.village_id = p.village_id
             JOIN accounts a ON a.id = p.account_id AND a.village_id = p.village_id
           WHERE e.village_id IN (SELECT id FROM villages WHERE town = :t) AND e.month = :m
             AND a.kind = 'redemptions'
           GROUP BY p.village_id) r
       ON r.village_id = v.id
WHERE v.town = :t ORDER BY v.code
"""

RAW_READ_ENTRIES = "SELECT * FROM journal_entries {where} ORDER BY village_id, seq"
RAW_READ_POSTINGS = "SELECT * FROM postings {where}"

RAW_CLOSE = [
    # One expiry entry per lot with a balance, numbered after each village's head.
    """
    INSERT INTO journal_entries (village_id, seq, kind, scheme_id, household_id, period_key,
        month, score_delta, memo, idem_key, request_hash, created_at, prev_hash, hash)
    SELECT a.village_id,
           ch.seq + ROW_NUMBER() OVER (PARTITION BY a.village_id ORDER BY a.id),
           'expiry', a.scheme_id, a.household_id, a.period_key, '2027-01', 0, 'raw close',
           'close:' || a.id || ':' || a.period_key, 'x', :now, 'x', 'x'
    FROM accounts a JOIN chain_heads ch ON ch.village_id = a.village_id
    WHERE a.kind = 'lot' AND a.period_key = :p AND a.closed_at IS NULL AND a.balance > 0
    """,
    """
    INSERT INTO postings (entry_id, village_id, account_id, amount)
    SELECT je.id, je.village_id, a.id, -a.balance
    FROM accounts a JOIN journal_entries je
      ON je.village_id = a.village_id AND je.idem_key = 'close:' || a.id || ':' || a.period_key
    WHERE a.kind = 'lot' AND a.period_key = :p AND a.closed_at IS NULL AND a.balance > 0
    """,
    """
    INSERT INTO postings (entry_id, village_id, account_id, amount)
    SELECT je.id, je.village_id, x.id, a.balance
    FROM accounts a JOIN journal_entries je
      ON je.village_id = a.village_id AND je.idem_key = 'close:' || a.id || ':' || a.period_key
    JOIN accounts x ON x.village_id = a.village_id AND x.key = 'sys:expired'
    WHERE a.kind = 'lot' AND a.period_key = :p AND a.closed_at IS NULL AND a.balance > 0
    """,
    """
    UPDATE accounts SET balance = 0, closed_at = :now
    WHERE kind = 'lot' AND period_key = :p AND closed_at IS NULL
    """,
]

RAW_STATEMENTS = """
SELECT a.household_id, je.kind, je.category, sum(p.amount)
FROM postings p JOIN accounts a ON a.id = p.account_id AND a.village_id = p.village_id
JOIN journal_entries je ON je.id = p.entry_id AND je.village_id = p.village_id
WHERE a.scheme_id = :s AND a.household_id IS NOT NULL
GROUP BY a.household_id, je.kind, je.category
"""


# (The joins name village_id too, as the project's own queries do, so that on Citus both sides
# run as colocated queries: the same result on one server.)


# --- timing -------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20
try:
    LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc
    LIBC = None


class RssSampler:
    """The highest resident set size seen while a block runs (sampled every 5 ms from
    /proc/self/statm), so each side's memory is measured apart from the other's: the process's
    high-water mark (getrusage) never comes down after a side that reads every row."""

    def __init__(self) -> None:
        self.peak, self.running = 0.0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while self.running:
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * PAGE_MIB)
            time.sleep(0.005)

    def __enter__(self):
        # Give back what an earlier side freed, so it does not count as this side's.
        gc.collect()
        if LIBC is not None:
            LIBC.malloc_trim(0)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


class Bench:
    def __init__(self, engine: Engine, repeat: int, only: list[str] | None = None):
        self.engine, self.repeat, self.only = engine, repeat, only or []
        self.sessions = make_sessionmaker(engine)
        self.rows: list[tuple] = []

    def wants(self, name: str) -> bool:
        """Whether the pair is run: all of them, or those `--only` names a part of."""
        return not self.only or any(part in name for part in self.only)

    def pair(self, name: str, ours, raw, *, write: bool = False) -> None:
        """Time ours and raw alternately; each in its own transaction (rolled back if write)."""
        if not self.wants(name):
            return
        times = {"ours": [], "raw": []}
        rss = {"ours": 0.0, "raw": 0.0}
        for _ in range(self.repeat):
            for side, fn in (("ours", ours), ("raw", raw)):
                with self.sessions() as s, RssSampler() as sampler:
                    t0 = time.perf_counter()
                    fn(s)
                    if not write:
                        s.commit()
                    times[side].append(time.perf_counter() - t0)
                    s.rollback()
                rss[side] = max(rss[side], sampler.peak)
        o, r = statistics.median(times["ours"]), statistics.median(times["raw"])
        self.rows.append((name, o, r, o / r if r else float("inf"), rss["ours"], rss["raw"]))
        print(
            f"  {name:<28} ours {o:8.3f} s   raw {r:8.3f} s   ratio {o / r:6.2f}x   "
            f"RSS ours {rss['ours']:.0f} MiB, raw {rss['raw']:.0f} MiB",
            flush=True,
        )


def first_village(s) -> Village:
    return s.execute(select(Village).order_by(Village.id).limit(1)).scalar_one()


def scheme_ids(s) -> str:
    return ",".join(str(i) for i in s.execute(select(Scheme.id)).scalars())


def run_ops(bench: Bench, args) -> None:
    now = CLOSE_AT

    def board_one(s):
        boards.draft_board(s, village=first_village(s), month=BOARD_MONTH, now=now)

    def raw_board_one(s):
        v = first_village(s)
        sid = s.execute(select(Scheme.id).where(Scheme.village_id == v.id)).scalar_one()
        s.execute(text(RAW_BOARD.format(schemes=sid)), {"m": BOARD_MONTH, "p": PERIOD}).all()

    def board_all(s):
        # Every village's board at once, as the scheduler's job drafts them (issue 18).
        villages = s.execute(select(Village).order_by(Village.id)).scalars().all()
        boards.draft_boards(s, villages=villages, month=BOARD_MONTH, now=now)

    def raw_board_all(s):
        s.execute(
            text(RAW_BOARD.format(schemes=scheme_ids(s))), {"m": BOARD_MONTH, "p": PERIOD}
        ).all()

    def town(s):
        town_summary(s, town="镇00", month=BOARD_MONTH)

    def raw_town(s):
        s.execute(text(RAW_TOWN), {"t": "镇00", "m": BOARD_MONTH}).all()

    def verify_one(s):
        assert verify(s, village_code="c0000").ok

    def raw_read_one(s):
        v = first_village(s)
        where = f"WHERE village_id = {v.id}"
        s.execute(text(RAW_READ_ENTRIES.format(where=where))).all()
        s.execute(text(RAW_READ_POSTINGS.format(where=where))).all()

    def verify_all(s):
        assert verify(s).ok

    def raw_read_all(s):
        s.execute(text(RAW_READ_ENTRIES.format(where=""))).all()
        s.execute(text(RAW_READ_POSTINGS.format(where=""))).all()

    def close_all(s):
        for scheme in s.execute(select(Scheme).order_by(Scheme.id)).scalars().all():
            cycles.close_period(s, scheme=scheme, period=PERIOD, now=now)

    def raw_close(s):
        for sql in RAW_CLOSE:
            s.execute(
                text(sql),
                {
                    "p": PERIOD,
                    "now": now.astimezone(UTC).replace(tzinfo=None)
                    if s.get_bind().dialect.name == "sqlite"
                    else now,
                },
            )

    bench.pair("board draft, one village", board_one, raw_board_one, write=True)
    bench.pair("board draft, all villages", board_all, raw_board_all, write=True)
    bench.pair("town summary (10 villages)", town, raw_town)
    # The close (rolled back) before verify: the raw side of "verify, all" holds every row in
    # Python at once, and memory it frees is not always given back to the system, so a side
    # run after it would carry it in its RSS.
    bench.pair("quarter close, all villages", close_all, raw_close, write=True)
    bench.pair("verify, one village", verify_one, raw_read_one)
    bench.pair("verify, all villages", verify_all, raw_read_all)

    # Statements need the quarter closed: close it for good (untimed), then time them.
    if not bench.wants("period statements, village"):
        return
    with bench.sessions.begin() as s:
        close_all(s)

    def statements_one(s):
        period_statements(s, village=first_village(s), period=PERIOD)

    def raw_statements_one(s):
        v = first_village(s)
        sid = s.execute(select(Scheme.id).where(Scheme.village_id == v.id)).scalar_one()
        s.execute(text(RAW_STATEMENTS), {"s": sid}).all()

    bench.pair("period statements, village", statements_one, raw_statements_one)


def open_citus(url: str | None):
    """The coordinator's database as it is (a new one would need the extension on every node):
    drop what an earlier run left there; keep this run's county for `points verify`."""
    if not url:
        raise SystemExit("--citus needs --url of the coordinator's database")
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for sql in (
            "SELECT 'DROP TABLE IF EXISTS ' || string_agg(quote_ident(tablename), ', ') "
            "|| ' CASCADE' FROM pg_tables WHERE schemaname = 'public' HAVING count(*) > 0",
            "SELECT 'DROP FUNCTION ' || string_agg(oid::regprocedure::text, ', ') "
            "FROM pg_proc WHERE pronamespace = 'public'::regnamespace HAVING count(*) > 0",
        ):
            drop = conn.execute(text(sql)).scalar()
            if drop:
                conn.execute(text(drop))
    engine.dispose()
    return url, lambda: None


def open_database(url: str | None):
    if url is None or url.startswith("sqlite"):
        if url is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench_county_")
            return f"sqlite:///{tmp.name}/county.db", tmp.cleanup
        return url, lambda: None
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin.url).set(database=name).render_as_string(hide_password=False), drop


def build_county(engine: Engine, args) -> None:
    upgrade(engine, distributed="citus" if args.citus else "")
    print(
        f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{engine.dialect.name}, {args.villages} villages x {args.households} households"
    )
    t0 = time.perf_counter()
    built = build(engine, args)
    took = time.perf_counter() - t0
    households = args.villages * args.households
    print(
        f"built {households:,} households and {built['entries']:,} entries in {took:.0f} s "
        f"(roster {households / built['roster']:,.0f} households/s, awards "
        f"{built['entries'] / built['awards']:,.0f} entries/s, stand-in ANALYZE "
        f"{built['analyze']:.0f} s); peak RSS {peak_rss_mib():.0f} MiB"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="database URL (default: a fresh SQLite file in a temp dir)")
    p.add_argument("--villages", type=int, default=200)
    p.add_argument("--households", type=int, default=500)
    p.add_argument("--awards", type=int, default=10, help="awards per household over Q4")
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs of each side")
    p.add_argument("--progress", type=int, default=20, help="report every K villages built")
    p.add_argument("--build-only", action="store_true", help="build the county, time it, stop")
    p.add_argument(
        "--built",
        action="store_true",
        help="--url already holds a county this script built (e.g. a copy of a --build-only "
        "SQLite file): skip the build and time the operations on it",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the PostgreSQL database this run created (its URL is printed), for --built "
        "runs; a SQLite county stays where --url put it",
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="run only the pairs whose name contains TEXT (repeatable), e.g. --only board",
    )
    p.add_argument(
        "--citus",
        action="store_true",
        help="--url is a Citus coordinator database: empty it, distribute, keep it afterwards",
    )
    args = p.parse_args(argv)
    if args.built:
        url, cleanup = args.url, lambda: None
    else:
        url, cleanup = open_citus(args.url) if args.citus else open_database(args.url)
    if args.keep:
        print(f"the county stays in {url}")
        cleanup = lambda: None  # noqa: E731
    engine = make_engine(url)
    try:
        if args.built:
            with engine.connect() as conn:
                villages = conn.execute(text("SELECT count(*) FROM villages")).scalar_one()
            print(f"{engine.dialect.name}, a built county of {villages} villages")
        else:
            build_county(engine, args)
        if args.build_only:
            return 0
        # Fresh statistics, as autovacuum (off on the CI server here) would have them.
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        bench = Bench(engine, args.repeat, args.only)
        run_ops(bench, args)
        print(
            "\n| operation | ours (s) | raw SQL (s) | ratio | peak RSS ours (MiB) | peak RSS raw (MiB) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, o, r, ratio, rss_ours, rss_raw in bench.rows:
            print(f"| {name} | {o:.3f} | {r:.3f} | {ratio:.2f}x | {rss_ours:.0f} | {rss_raw:.0f} |")
    finally:
        engine.dispose()
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
