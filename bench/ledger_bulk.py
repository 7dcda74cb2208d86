"""Bulk posting through the ledger against the same rows written with a plain executemany.

    python bench/ledger_bulk.py [--url URL] [-n 100000] [--households 1000] [--batch 1000]

The ledger side posts N awards with `points.ledger.post_awards`, one committed transaction per
batch (like an event batch or an import), each award under its own idempotency key, round robin
over the households of one village. The raw side writes the same number of entry rows and posting
rows (2 per award: the subject's lot and the village's issuance account) in the same database
with a plain DBAPI `executemany`, in the same batch size and transaction pattern. Batches of the
two sides alternate, so that checkpoints, autovacuum and cache warmth fall on both alike. Only
the writes and their commits are timed; building the input rows is not.

`--raw village` (default) writes into the real journal_entries and postings, for a second
village with its own households, lots and issuance account: the schema's indexes, foreign keys,
checks and triggers are paid by both sides, so the ratio isolates what the ledger's own work
costs (planning, conditional balance updates, lock, replay checks, hash chain). Its rows carry
placeholder hashes and leave cached balances alone, so verify then checks the ledger's village
only. `--raw plain` writes into two tables the script creates, with the columns and types of
journal_entries and postings and nothing but a primary key (no foreign key, unique, check,
index or trigger): the bare cost of the rows, a floor no schema with integrity reaches.

With no --url the database is a fresh SQLite file in a temporary folder. With a PostgreSQL URL
the script connects to it in AUTOCOMMIT, creates a throwaway database bench_<random>, works
there and drops it at the end (WITH (FORCE)), so it never collides with tests. The schema is
built with alembic (api.migrate.upgrade). At the end points.ledger.verify.verify re-checks the ledger:
a benchmark that corrupted it would be worthless.

This is a benchmark, never a test: nothing runs it on CI.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Column, Engine, MetaData, Table, func, make_url, select, text  # noqa: E402

from api.migrate import upgrade  # noqa: E402
from points.db import make_engine, make_sessionmaker  # noqa: E402
from points.ledger import AwardLine, post_awards  # noqa: E402
from points.ledger.verify import verify  # noqa: E402
from points.models import Account, Group, Household, JournalEntry, Posting, Scheme, Village  # noqa: E402
from points.models.catalog import ClosePolicy, SubjectKind  # noqa: E402
from points.models.ledger import AccountKind  # noqa: E402
from points.periods import PeriodKind, local_date, month_key, period_key, period_start  # noqa: E402

CATEGORIES = ("环境卫生", "邻里互助", "移风易俗", "志愿服务")
MEMOS = ("门前三包", "参加义务劳动", "", "调解邻里纠纷")


@dataclass
class Side:
    """Timing of one side: seconds spent inside timed writes, entries written."""

    seconds: float = 0.0
    entries: int = 0
    laps: list[float] = field(default_factory=list)

    def lap(self, seconds: float, entries: int) -> None:
        self.seconds += seconds
        self.entries += entries
        self.laps.append(seconds)

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


@dataclass
class Setup:
    village_id: int
    village_code: str
    scheme_id: int
    households: list[int]


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


def open_database(url: str | None) -> tuple[str, callable]:
    """Return (url of a fresh database, cleanup)."""
    if url is None or url.startswith("sqlite"):
        if url is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench_ledger_")
            return f"sqlite:///{tmp.name}/bench.db", tmp.cleanup
        return url, lambda: None
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    bench_url = make_url(admin.url).set(database=name).render_as_string(hide_password=False)
    return bench_url, drop


def make_village(sessions, code: str, households: int, now: datetime) -> Setup:
    """A village, one group, `households` households and a redeemable household scheme."""
    with sessions() as s:
        village = Village(code=code, name=f"{code}村", town="城关镇", county="示范县")
        s.add(village)
        s.flush()
        group = Group(village_id=village.id, name="第一组")
        s.add(group)
        s.flush()
        homes = [
            Household(village_id=village.id, group_id=group.id, number=f"{i + 1:04d}")
            for i in range(households)
        ]
        s.add_all(homes)
        scheme = Scheme(
            village_id=village.id,
            code="household",
            name="户积分",
            subject_kind=SubjectKind.HOUSEHOLD,
            period_kind=PeriodKind.QUARTER,
            close_policy=ClosePolicy.CARRY,
            base_score=0,
            redemption_threshold=0,
            notice_days=7,
            redeemable=True,
        )
        s.add(scheme)
        s.flush()
        setup = Setup(village.id, code, scheme.id, [h.id for h in homes])
        s.commit()
    return setup


# ---------------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------------


def award_lines(setup: Setup, start: int, count: int) -> list[AwardLine]:
    """Awards start..start+count-1, round robin over the households, each with its own key."""
    homes = setup.households
    return [
        AwardLine(
            subject_id=homes[i % len(homes)],
            points=1 + i % 10,
            idem_key=f"bench:{i}",
            memo=MEMOS[i % len(MEMOS)],
            category=CATEGORIES[i % len(CATEGORIES)],
        )
        for i in range(start, start + count)
    ]


def ledger_batch(sessions, scheme_id: int, lines: list[AwardLine], now: datetime) -> float:
    """Post one batch in its own committed transaction; return the seconds it took."""
    with sessions() as s:
        scheme = s.get(Scheme, scheme_id)
        t0 = time.perf_counter()
        post_awards(s, scheme=scheme, lines=lines, actor_id=None, now=now)
        s.commit()
        return time.perf_counter() - t0


class RawWriter:
    """Writes entry and posting rows with a plain DBAPI executemany, entry ids given.

    Entry ids are given, as a bulk loader would give them, so that postings can name their
    entry without a round trip. In the plain tables they count from 1. In the real tables they
    continue the table's ids (max + 1, read untimed before the batch), and on PostgreSQL the
    id sequence is moved past them (untimed) so that the ledger's next rows do not collide.
    """

    ENTRY_COLS = [c.name for c in JournalEntry.__table__.columns]
    POSTING_COLS = [c.name for c in Posting.__table__.columns if c.name != "id"]

    def __init__(self, engine, mode: str, setup: Setup, ledger_households: list[int], accounts):
        self.engine, self.setup, self.mode, self.accounts = engine, setup, mode, accounts
        self.pg = engine.dialect.name == "postgresql"
        if mode == "plain":
            self.entries, self.postings = "bench_raw_entries", "bench_raw_postings"
            self._create_plain_tables()
        else:
            self.entries, self.postings = "journal_entries", "postings"
        # The raw side's awards go to the household in the same position as the ledger's.
        self.home_of = dict(zip(ledger_households, setup.households, strict=True))
        mark = (lambda c: f"%({c})s") if self.pg else (lambda c: f":{c}")
        self.entry_sql = (
            f"INSERT INTO {self.entries} ({', '.join(self.ENTRY_COLS)}) "
            f"VALUES ({', '.join(mark(c) for c in self.ENTRY_COLS)})"
        )
        self.posting_sql = (
            f"INSERT INTO {self.postings} ({', '.join(self.POSTING_COLS)}) "
            f"VALUES ({', '.join(mark(c) for c in self.POSTING_COLS)})"
        )
        self.blank = dict.fromkeys(self.ENTRY_COLS)
        self.next_id = self.seq = 0
        self.lots, self.issuance = accounts()

    def _create_plain_tables(self) -> None:
        md = MetaData()
        for name, model in (("bench_raw_entries", JournalEntry), ("bench_raw_postings", Posting)):
            cols = [
                Column(c.name, c.type, primary_key=c.primary_key, autoincrement=c.primary_key)
                for c in model.__table__.columns
            ]
            Table(name, md, *cols)
        md.create_all(self.engine)

    def rows(self, lines: list[AwardLine], now: datetime) -> tuple[list[dict], list[dict]]:
        """The rows the ledger writes for these awards (hashes are placeholders). Untimed."""
        if self.mode == "village":
            with self.engine.connect() as conn:
                self.next_id = conn.exec_driver_sql("SELECT MAX(id) FROM journal_entries").scalar()
        if any(self.home_of[line.subject_id] not in self.lots for line in lines):
            self.lots, self.issuance = self.accounts()  # the ledger opened more lots
        v = self.setup.village_id
        created = now.astimezone(UTC)
        created = created if self.pg else created.replace(tzinfo=None).isoformat(" ")
        day = local_date(now)
        pkey, month = period_key(PeriodKind.QUARTER, day), month_key(day)
        entries, postings = [], []
        for line in lines:
            self.next_id += 1
            self.seq += 1
            home = self.home_of[line.subject_id]
            entries.append(
                {
                    **self.blank,  # columns the ledger leaves NULL on an award
                    "id": self.next_id,
                    "village_id": v,
                    "seq": self.seq,
                    "kind": "award",
                    "scheme_id": self.setup.scheme_id,
                    "household_id": home,
                    "resident_id": None,
                    "period_key": pkey,
                    "month": month,
                    "score_delta": line.points,
                    "category": line.category,
                    "memo": line.memo,
                    "actor_id": None,
                    "reverses_id": None,
                    "idem_key": line.idem_key,
                    "request_hash": f"{self.seq:064x}",
                    "created_at": created,
                    "prev_hash": f"{self.seq - 1:064x}",
                    "hash": f"{self.seq:064x}",
                }
            )
            for account, amount in ((self.issuance, -line.points), (self.lots[home], line.points)):
                postings.append(
                    {
                        "entry_id": self.next_id,
                        "village_id": v,
                        "account_id": account,
                        "amount": amount,
                    }  # fmt: skip
                )
        return entries, postings

    def batch(self, entries: list[dict], postings: list[dict]) -> float:
        """Write one batch in its own committed transaction; return the seconds it took."""
        t0 = time.perf_counter()
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self.entry_sql, entries)
            conn.exec_driver_sql(self.posting_sql, postings)
        seconds = time.perf_counter() - t0
        if self.pg and self.mode == "village":
            with self.engine.begin() as conn:
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('journal_entries', 'id'), %(id)s)",
                    {"id": self.next_id},
                )
        return seconds


def subject_accounts(sessions, setup: Setup, now: datetime) -> tuple[dict[int, int], int]:
    """Lot per household and the issuance account: read (the ledger opened them) or, for the
    raw side's own village, created at once when it has none."""
    pkey = period_key(PeriodKind.QUARTER, local_date(now))
    start = period_start(PeriodKind.QUARTER, pkey)
    with sessions() as s:
        existing = dict(
            s.execute(
                select(Account.household_id, Account.id).where(
                    Account.village_id == setup.village_id, Account.kind == AccountKind.LOT
                )
            ).all()
        )
        if not existing:
            accounts = [
                Account(
                    village_id=setup.village_id,
                    key=f"lot:{setup.scheme_id}:h{h}:{pkey}",
                    kind=AccountKind.LOT.value,
                    scheme_id=setup.scheme_id,
                    household_id=h,
                    period_key=pkey,
                    period_start=start,
                    balance=0,
                )
                for h in setup.households
            ]
            accounts.append(
                Account(
                    village_id=setup.village_id, key="sys:issuance", kind=AccountKind.ISSUANCE.value
                )
            )
            s.add_all(accounts)
            s.commit()
            existing = {a.household_id: a.id for a in accounts if a.household_id}
        issuance = s.execute(
            select(Account.id).where(
                Account.village_id == setup.village_id, Account.key == "sys:issuance"
            )
        ).scalar_one()
    return existing, issuance


class AutoAnalyze:
    """Stands in for autovacuum's ANALYZE on a PostgreSQL server that has autovacuum off.

    Production servers run autovacuum (the default); a CI server may turn it off, and then the
    planner never learns that journal_entries grew: it keeps plans made for an empty table. So
    when `SHOW autovacuum` is off, ANALYZE runs (untimed, between batches) whenever autovacuum
    would: after 50 + 10% more entries than at the last ANALYZE.
    """

    def __init__(self, engine: Engine, *, enabled: bool):
        self.engine, self.runs, self.seconds, self.last = engine, 0, 0.0, 0
        self.state = "not needed (SQLite)"
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                autovacuum = conn.exec_driver_sql("SHOW autovacuum").scalar_one()
            if autovacuum == "on":
                self.state = "left to the server's autovacuum"
            elif enabled:
                self.state = "run by the bench: the server has autovacuum off"
            else:
                self.state = "never (--no-analyze; the server has autovacuum off)"
        self.active = self.state.startswith("run by")

    def after(self, entries: int) -> None:
        if self.active and entries - self.last > 50 + 0.1 * self.last:
            t0 = time.perf_counter()
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            self.seconds += time.perf_counter() - t0
            self.runs, self.last = self.runs + 1, entries

    def describe(self) -> str:
        if not self.active:
            return self.state
        return f"{self.state}; {self.runs} runs, {self.seconds:.1f} s untimed"


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(args) -> int:
    url, cleanup = open_database(args.url)
    engine = make_engine(url)
    try:
        return _run(args, engine)
    finally:
        engine.dispose()
        cleanup()


def _run(args, engine: Engine) -> int:
    n, batch = args.n, args.batch
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    upgrade(engine)
    dialect = engine.dialect.name
    version = engine.dialect.server_version_info if dialect == "postgresql" else None
    version = version or tuple(int(x) for x in sqlite3.sqlite_version.split("."))
    print(f"database   {dialect} {'.'.join(map(str, version))} {engine.url.database}")
    sessions = make_sessionmaker(engine)
    ledger = make_village(sessions, "bench", args.households, now)
    if args.raw == "village":
        raw_village = make_village(sessions, "bench_raw", args.households, now)
    else:
        raw_village = ledger
    print(f"setup      {time.perf_counter() - t0:.1f} s (schema, {args.households} households)")

    # The ledger's first batch creates the lots; the raw side needs their ids (or its own).
    ledger_side, raw_side = Side(), Side()
    first = award_lines(ledger, 0, min(batch, n))
    ledger_side.lap(ledger_batch(sessions, ledger.scheme_id, first, now), len(first))
    raw = RawWriter(
        engine,
        args.raw,
        raw_village,
        ledger.households,
        accounts=lambda: subject_accounts(sessions, raw_village, now),
    )

    analyze = AutoAnalyze(engine, enabled=args.analyze)
    raw_side.lap(raw.batch(*raw.rows(first, now)), len(first))
    done = len(first)
    analyze.after(done)
    while done < n:
        count = min(batch, n - done)
        lines = award_lines(ledger, done, count)
        ledger_side.lap(ledger_batch(sessions, ledger.scheme_id, lines, now), count)
        raw_side.lap(raw.batch(*raw.rows(lines, now)), count)
        done += count
        analyze.after(done)
        if args.progress and (done // batch) % args.progress == 0:
            print(
                f"  {done:>8} entries  ledger {ledger_side.rate:8.0f}/s  raw {raw_side.rate:8.0f}/s",
                flush=True,
            )

    ratio = ledger_side.rate / raw_side.rate
    first_laps = ", ".join(f"{s * 1000:.0f}" for s in ledger_side.laps[:3])
    print(f"N          {n}")
    print(f"batch      {batch}")
    print(f"households {args.households}")
    print(f"raw into   {args.raw}")
    print(f"ledger     {ledger_side.seconds:8.2f} s  {ledger_side.rate:9.0f} entries/s")
    print(f"raw        {raw_side.seconds:8.2f} s  {raw_side.rate:9.0f} entries/s")
    print(f"ratio      {ratio:.3f}  (ledger rate / raw rate; target >= 0.2)")
    print(f"laps       ledger first batches {first_laps} ms")
    print(f"peak RSS   {peak_rss_mib():.0f} MiB (this process)")
    print(f"analyze    {analyze.describe()}")

    t0 = time.perf_counter()
    with sessions() as s:
        entries = s.execute(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.village_id == ledger.village_id)
        ).scalar_one()
        code = ledger.village_code if args.raw == "village" else None
        report = verify(s, village_code=code)
    scope = f"village {code}" if code else "whole database"
    if entries != n:
        report.breaches.insert(0, f"the ledger holds {entries} entries, not {n}")
    if report.ok:
        print(
            f"verify     OK ({scope}, {report.entries} entries, {time.perf_counter() - t0:.1f} s)"
        )
    else:
        print(f"verify     BREACH ({scope}): {report.breaches[0]}")
    print(f"peak RSS   {peak_rss_mib():.0f} MiB (after verify)")
    return 0 if report.ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="database URL (default: a fresh SQLite file in a temp dir)")
    p.add_argument("-n", type=int, default=100_000, help="awards to post (default 100000)")
    p.add_argument("--households", type=int, default=1000)
    p.add_argument("--batch", type=int, default=1000, help="awards per transaction")
    p.add_argument(
        "--raw",
        choices=("plain", "village"),
        default="village",
        help="baseline: the real tables, for a second village (default), or bare tables",
    )
    p.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="PostgreSQL with autovacuum off: do not stand in for its ANALYZE",
    )
    p.add_argument("--progress", type=int, default=0, help="print rates every K batches")
    args = p.parse_args(argv)
    if args.n < 1 or args.batch < 1 or args.households < 1:
        p.error("-n, --batch and --households must be positive")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
