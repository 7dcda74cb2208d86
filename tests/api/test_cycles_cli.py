"""`points cycle …` and the scheduler as an admin runs them: close the demo's quarter, read it back."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import and_, func, select

from api.cli import main
from api.scheduler import LEASE_NAME, Ticker, reconcile_now, start_in_process
from points import ledger
from points.db import make_engine, make_sessionmaker, utcnow
from points.demo import create_demo_village
from points.ledger.verify import verify
from points.models import Account, CycleRun, JournalEntry, Lease, Posting, Scheme
from points.periods import local_date, period_end_utc, period_key
from tests.api.conftest import make_app
from tests.factories import make_household, make_scheme, make_village
from tests.points.test_cycles import award, bj, period_jobs_only  # noqa: F401 (autouse)
from tests.processes import Child, run


def _quarter_end_after(moment):
    """The end of the quarter containing `moment` (the demo's current quarter), plus 5 minutes."""
    return period_end_utc("quarter", period_key("quarter", local_date(moment))) + timedelta(
        minutes=5
    )


@pytest.fixture
def demo_app(db_url):
    """An app on a database holding the demo village (built in-process: cheap password hashes)."""
    app = make_app(db_url)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        create_demo_village(s, now=utcnow())
    return app


def points_cli(app, *args, input=None):
    """Run `points ARGS` in-process against `app`, as an operator would type it."""
    return app.test_cli_runner().invoke(
        main, [str(a) for a in args], input=input, catch_exceptions=False
    )


def _lot_balances(app) -> dict[int, int]:
    """Each demo household's open household-scheme points, before the close."""
    with app.extensions["points.sessionmaker"]() as s:
        scheme = s.execute(select(Scheme).where(Scheme.code == "household")).scalar_one()
        rows = s.execute(
            select(Account.household_id, func.sum(Account.balance))
            .where(Account.scheme_id == scheme.id, Account.kind == "lot")
            .group_by(Account.household_id)
        ).all()
    return {hid: int(total) for hid, total in rows}


def _expired(app) -> dict[int, int]:
    with app.extensions["points.sessionmaker"]() as s:
        rows = s.execute(
            select(Account.household_id, func.sum(Posting.amount))
            .join(
                Posting,
                and_(Posting.account_id == Account.id, Posting.village_id == Account.village_id),
            )
            .join(
                JournalEntry,
                and_(
                    JournalEntry.id == Posting.entry_id,
                    JournalEntry.village_id == Posting.village_id,
                ),
            )
            .where(JournalEntry.kind == "expiry", Account.kind == "lot")
            .group_by(Account.household_id)
        ).all()
    return {hid: -int(total) for hid, total in rows if total}


def test_closing_the_demo_quarter_then_printing_its_statements(demo_app, tmp_path):
    app = demo_app
    close_at = _quarter_end_after(utcnow())
    quarter = period_key("quarter", local_date(close_at - timedelta(hours=1)))
    before = _lot_balances(app)

    status = points_cli(app, "cycle", "status")
    assert status.exit_code == 0, status.output
    assert f"{quarter}  进行中 (open)" in status.stdout and "户积分" in status.stdout
    early = points_cli(app, "cycle", "statement", "--period", quarter, tmp_path / "early.pdf")
    assert early.exit_code == 1 and "尚未结算" in early.stderr
    wrong = points_cli(app, "cycle", "statement", "--period", quarter, tmp_path / "q.doc")
    assert wrong.exit_code == 2 and ".pdf" in wrong.stderr
    vague = points_cli(app, "cycle", "close", "--now", "new year's eve")
    assert vague.exit_code == 2 and "ISO" in vague.stderr

    refused = points_cli(app, "cycle", "close", "--now", close_at.isoformat(), input="n\n")
    assert refused.exit_code == 1 and "未来" in refused.stdout  # the admin said no
    assert _expired(app) == {}

    closed = points_cli(app, "cycle", "close", "--now", close_at.isoformat(), "--yes")
    assert closed.exit_code == 0, closed.output
    assert f"完成 (done) period_close household:{quarter}" in closed.stdout
    assert "period_close party:" in closed.stdout  # the party year ends with the quarter
    # reset: every household's points earned in the closed quarters are what expired.
    assert _expired(app) == {hid: bal for hid, bal in before.items() if bal}
    again = points_cli(app, "cycle", "close", "--now", close_at.isoformat(), "--yes")
    assert again.exit_code == 0 and "period_close" not in again.stdout

    status = points_cli(app, "cycle", "status", "--village", "demo")
    assert f"{quarter}  已结算 (closed)" in status.stdout
    assert f"household:{quarter} done" in status.stdout

    check = points_cli(app, "verify")
    assert check.exit_code == 0, check.output
    head = check.stdout.splitlines()[0].removeprefix("demo: head ")

    xlsx, pdf = tmp_path / "q.xlsx", tmp_path / "q.pdf"
    for out in (xlsx, pdf):
        made = points_cli(app, "cycle", "statement", "--period", quarter, out)
        assert made.exit_code == 0, made.output
        assert f"账本链头 (ledger head): {head}" in made.stdout
    sheet = load_workbook(xlsx).active
    assert sheet["B3"].value == head
    rows = list(sheet.iter_rows(min_row=6, values_only=True))
    assert len(rows) == 60
    header = [c.value for c in sheet[5]]
    closing, expired = header.index("期末余额"), header.index("到期清零")
    assert all(row[closing] == 0 for row in rows if row[expired])  # reset, on time: nothing left
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = run(["pdftotext", str(pdf), "-"], check=True).stdout
        assert text.count(head) == 60  # one page per household, each with the head
    assert points_cli(app, "verify", "--head", head).exit_code == 0

    one = tmp_path / "one.pdf"
    made = points_cli(
        app, "cycle", "statement", "--period", quarter, "--household", rows[0][0], one
    )
    assert made.exit_code == 0 and "1 户" in made.stdout


def _world(app, when=None):
    """Village `cyc`: one household with 8 points earned at `when` (default 2026-11-02)."""
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = make_village(s, "cyc")
        scheme = make_scheme(s, village, close_policy="reset")
        home = make_household(s, village)
        award(s, scheme, home, 8, when or bj(2026, 11, 2, 9))
        return village.id


def test_reconcile_now_commits_item_by_item_and_once(db_url):
    app = make_app(db_url)
    village_id = _world(app)
    report = reconcile_now(app, now=bj(2027, 1, 3, 8), village_id=village_id)
    assert [(r.item.key, r.status) for r in report.results] == [("household:2026-Q4", "done")]
    assert reconcile_now(app, now=bj(2027, 1, 3, 8)).results == []
    with app.extensions["points.sessionmaker"]() as s:
        assert verify(s).ok
        assert ledger.chain_head(s, village_id)[0] == 2  # the award, then its expiry


def test_one_ticker_holds_the_lease_and_the_other_stands_by(db_url):
    app = make_app(db_url)
    assert start_in_process(app) is None  # never under TESTING
    _world(app)
    first, second = Ticker(app, interval=60), Ticker(app, interval=60)
    assert first.lease_seconds == 180
    report = first.tick()
    assert report is not None  # wall clock: the award's quarter may not have ended yet
    assert second.tick() is None
    first.release()
    assert second.tick() is not None
    with app.extensions["points.sessionmaker"]() as s:
        lease = s.get(Lease, LEASE_NAME)
        assert lease.holder == second.holder and lease.expires_at > utcnow()


def test_the_dedicated_scheduler_reconciles_at_start_and_stops_cleanly(db_url, tmp_path):
    _world(make_app(db_url), when=utcnow() - timedelta(days=100))  # last quarter: due at start
    # It backs up before the close and for the day: into the test's folder.
    env = dict(os.environ, POINTS_DATABASE_URL=db_url, POINTS_BACKUP_DIR=str(tmp_path))
    engine = make_engine(db_url)
    scheduler = Child(
        [sys.executable, "-m", "api.cli", "scheduler", "--interval", "3600"],
        env=env,
        merge_stderr=True,
    )
    try:
        with make_sessionmaker(engine)() as s:

            def reconciled() -> bool:
                runs = s.execute(select(func.count()).select_from(CycleRun)).scalar_one()
                s.rollback()
                return runs > 0

            scheduler.wait_until(reconciled, "reconciled")
        scheduler.proc.send_signal(signal.SIGTERM)
        assert scheduler.finish() == 0, scheduler.stdout
        assert "done period_close household:" in scheduler.stdout
        with make_sessionmaker(engine)() as s:
            assert s.get(Lease, LEASE_NAME) is None  # released on the way out
            assert verify(s).ok
    finally:
        scheduler.kill()
        engine.dispose()
