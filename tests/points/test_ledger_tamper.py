"""Tampering with the stored ledger is caught by `verify` and by `points verify`.

The database refuses UPDATE and DELETE on entries and postings (triggers). Someone with the
database's owner rights can drop those guards; then only the hash chain and the head printed
on a board stand between them and a quiet edit. Every test here drops the guards first,
tampers the way a dishonest operator would (fixing up what they can), and expects verify, and
the real CLI, to name the breach and the entry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from points import ledger
from points.ledger.verify import verify
from points.models import Account, JournalEntry, Posting
from tests.factories import make_household, make_scheme, make_village
from tests.processes import run

ROOT = Path(__file__).resolve().parents[2]
CODE = "tamper"


@pytest.fixture
def books(session_factory, now):
    """A village with six entries, committed; returns what the tests need to tamper with.

    seq 1 award h1 30 · seq 2 award h2 20 · seq 3 deduct h1 5 · seq 4 spend h2 8 ·
    seq 5 award h1 12 · seq 6 reversal of seq 3
    """
    with session_factory() as s:
        village = make_village(s, code=CODE)
        scheme = make_scheme(s, village)
        h1, h2 = (make_household(s, village).id for _ in range(2))
        common = dict(scheme=scheme, actor_id=None)
        ledger.award(s, subject_id=h1, points=30, idem_key="t1", now=now, memo="义务劳动", **common)
        ledger.award(s, subject_id=h2, points=20, idem_key="t2", now=now, **common)
        fine = ledger.deduct(s, subject_id=h1, points=5, idem_key="t3", now=now, **common)
        ledger.spend(s, subject_id=h2, points=8, idem_key="t4", now=now, **common)
        ledger.award(s, subject_id=h1, points=12, idem_key="t5", now=now, **common)
        ledger.reverse(
            s, entry_id=fine.id, reason="处罚有误", actor_id=None, now=now + timedelta(hours=1)
        )
        s.commit()
        head = ledger.chain_head(s, village.id)
    assert head[0] == 6
    with session_factory() as s:
        assert verify(s).ok
    return dict(village_id=village.id, scheme=scheme, h1=h1, h2=h2, head=head, now=now)


def drop_guards(engine) -> None:
    """What someone with owner rights on the database can do."""
    with engine.begin() as conn:
        for table in ("journal_entries", "postings"):
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
                conn.execute(text(f"DROP TRIGGER {table}_no_truncate ON {table}"))
            else:
                conn.execute(text(f"DROP TRIGGER {table}_append_only_update"))
                conn.execute(text(f"DROP TRIGGER {table}_append_only_delete"))


def sql(engine, statement: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def entry_id(engine, village_id: int, seq: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(JournalEntry.id).where(
                JournalEntry.village_id == village_id, JournalEntry.seq == seq
            )
        ).scalar_one()


def recompute_cached_balances(engine) -> None:
    """The tamperer makes every cached balance agree with the (tampered) postings."""
    sql(
        engine,
        "UPDATE accounts SET balance = (SELECT COALESCE(SUM(amount), 0) FROM postings "
        "WHERE postings.account_id = accounts.id AND postings.village_id = accounts.village_id) "
        "WHERE balance IS NOT NULL",
    )


def delete_entries(engine, village_id: int, seqs) -> None:
    for seq in seqs:
        eid = entry_id(engine, village_id, seq)
        sql(engine, "DELETE FROM postings WHERE entry_id = :e", e=eid)
        sql(engine, "DELETE FROM journal_entries WHERE id = :e", e=eid)


def verify_now(session_factory, head=None):
    with session_factory() as s:
        return verify(s, village_code=CODE, expected_head=head)


def cli_verify(db_url: str, *args: str) -> subprocess.CompletedProcess:
    """Run the real `points verify` on the test database, as an operator would."""
    exe = shutil.which("points")
    cmd = [exe] if exe else [sys.executable, "-c", "from api.cli import main; main()"]
    env = dict(os.environ, POINTS_DATABASE_URL=db_url, POINTS_SECRET_KEY="test-only")
    return run([*cmd, "verify", "--village", CODE, *args], env=env, cwd=ROOT)


def head_arg(head) -> str:
    return f"{head[0]}:{head[1]}"


def assert_cli_breach(result, *needles: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    first = result.stderr.splitlines()[0]
    assert first.startswith("BREACH: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "OK:" not in result.stdout


# ---------------------------------------------------------------------------------------------


def test_the_database_refuses_update_and_delete_while_its_guards_stand(
    engine, books, session_factory
):
    vid = books["village_id"]
    eid = entry_id(engine, vid, 3)
    attempts = [
        "UPDATE journal_entries SET memo = 'x' WHERE id = :e",
        "UPDATE postings SET amount = amount + 1 WHERE entry_id = :e",
        "DELETE FROM postings WHERE entry_id = :e",
        "DELETE FROM journal_entries WHERE id = :e",
        "DELETE FROM postings",  # not even in bulk
    ]
    if engine.dialect.name == "postgresql":
        attempts.append("TRUNCATE postings")
    for statement in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            sql(engine, statement, e=eid)
    with session_factory() as s:
        assert s.execute(select(JournalEntry.memo).where(JournalEntry.id == eid)).scalar_one() == ""
        assert len(s.execute(select(Posting.id)).all()) == 2 + 2 + 2 + 2 + 2 + 2
    report = verify_now(session_factory, books["head"])
    assert report.ok and report.heads[CODE] == books["head"]


def test_a_forged_posting_amount_is_named_by_its_seq(engine, db_url, books, session_factory):
    # Shrink the fine of seq 3 from 5 to 1 on both legs, so the entry still balances, and give
    # the household the 4 points in its cached balance: only the hash chain can tell.
    drop_guards(engine)
    eid = entry_id(engine, books["village_id"], 3)
    sql(engine, "UPDATE postings SET amount = amount / 5 WHERE entry_id = :e", e=eid)
    recompute_cached_balances(engine)

    breaches = verify_now(session_factory).breaches
    assert breaches[0] == f"{CODE}: entry seq 3 was altered (its hash does not match its content)"
    assert len(breaches) == 2 and "stored chain head (6, " in breaches[1]  # walk stopped at 2
    assert_cli_breach(cli_verify(db_url, "--head", head_arg(books["head"])), "entry seq 3 was")


def test_a_naively_edited_posting_amount_breaks_the_sums_too(engine, books, session_factory):
    drop_guards(engine)
    eid = entry_id(engine, books["village_id"], 2)
    sql(
        engine, "UPDATE postings SET amount = amount + 50 WHERE entry_id = :e AND amount > 0", e=eid
    )

    breaches = verify_now(session_factory).breaches
    assert breaches[0] == f"{CODE}: entry seq 2 has 2 postings summing to 50, not zero"
    assert f"{CODE}: all postings sum to 50, not zero" in breaches
    assert any("caches 12 but its postings sum to 62" in b for b in breaches)
    assert f"{CODE}: entry seq 2 was altered (its hash does not match its content)" in breaches


def test_an_edited_memo_is_named_by_its_seq(engine, db_url, books, session_factory):
    drop_guards(engine)
    eid = entry_id(engine, books["village_id"], 1)
    sql(engine, "UPDATE journal_entries SET memo = '义务劳动（两天）' WHERE id = :e", e=eid)

    report = verify_now(session_factory)
    assert report.breaches == [
        f"{CODE}: entry seq 1 was altered (its hash does not match its content)"
    ]
    assert_cli_breach(cli_verify(db_url, "--head", head_arg(books["head"])), "entry seq 1 was")


def test_a_rehashed_edit_is_caught_by_the_printed_head(engine, db_url, books, session_factory):
    # A careful forger edits seq 2's memo and recomputes every hash after it, and the stored
    # head: the chain is self-consistent again, only the head printed before gives it away.
    drop_guards(engine)
    vid = books["village_id"]
    sql(
        engine, "UPDATE journal_entries SET memo = '改过' WHERE id = :e", e=entry_id(engine, vid, 2)
    )
    with session_factory() as s:
        prev = s.execute(
            select(JournalEntry.hash).where(JournalEntry.village_id == vid, JournalEntry.seq == 1)
        ).scalar_one()
        for entry in s.execute(
            select(JournalEntry)
            .where(JournalEntry.village_id == vid, JournalEntry.seq >= 2)
            .order_by(JournalEntry.seq)
        ).scalars():
            fields = {f: getattr(entry, f) for f in ledger.HASHED_FIELDS}
            fields["prev_hash"] = prev
            postings = [(p.account_id, p.amount) for p in entry.postings]
            prev = ledger.entry_hash(prev, fields, postings)
            s.execute(
                text("UPDATE journal_entries SET prev_hash = :p, hash = :h WHERE id = :e"),
                {"p": fields["prev_hash"], "h": prev, "e": entry.id},
            )
        s.execute(
            text("UPDATE chain_heads SET hash = :h WHERE village_id = :v"), {"h": prev, "v": vid}
        )
        s.commit()

    assert verify_now(session_factory).ok  # the forgery is internally consistent...
    report = verify_now(session_factory, books["head"])  # ...but not with the paper
    assert report.breaches == [f"{CODE}: entry seq 6 no longer has the hash {books['head'][1]}"]
    assert_cli_breach(
        cli_verify(db_url, "--head", head_arg(books["head"])), "entry seq 6 no longer has"
    )
    # a head printed as the usual short prefix works just as well
    short = (6, books["head"][1][:16])
    assert verify_now(session_factory, short).breaches == [
        f"{CODE}: entry seq 6 no longer has the hash {short[1]}"
    ]


def test_a_deleted_middle_entry_is_named_by_its_seq(engine, db_url, books, session_factory):
    # Delete the redemption of seq 4 with its postings and give household 2 its 8 points back
    # in the cached balances: the sums all agree, the chain has a hole.
    drop_guards(engine)
    delete_entries(engine, books["village_id"], [4])
    recompute_cached_balances(engine)
    with session_factory() as s:
        assert ledger.get_balance(s, scheme=books["scheme"], subject_id=books["h2"]).available == 20

    breaches = verify_now(session_factory).breaches
    assert breaches[0] == f"{CODE}: chain gap: expected seq 4, found 5"
    assert len(breaches) == 2 and "stored chain head (6, " in breaches[1]
    assert_cli_breach(
        cli_verify(db_url, "--head", head_arg(books["head"])), "chain gap: expected seq 4"
    )


def test_a_truncated_tail_is_caught_only_against_the_printed_head(
    engine, db_url, books, session_factory
):
    # Remove the last two entries (an award and a reversal), fix the balances and rewrite the
    # stored head to the new last entry: the remaining chain is perfect.
    drop_guards(engine)
    vid = books["village_id"]
    delete_entries(engine, vid, [6, 5])
    recompute_cached_balances(engine)
    with engine.connect() as conn:
        seq4_hash = conn.execute(
            select(JournalEntry.hash).where(JournalEntry.village_id == vid, JournalEntry.seq == 4)
        ).scalar_one()
    sql(
        engine,
        "UPDATE chain_heads SET seq = 4, hash = :h WHERE village_id = :v",
        h=seq4_hash,
        v=vid,
    )

    report = verify_now(session_factory)
    assert report.ok and report.heads[CODE] == (4, seq4_hash)
    plain = cli_verify(db_url)
    assert plain.returncode == 0 and f"{CODE}: head 4:{seq4_hash}" in plain.stdout

    report = verify_now(session_factory, books["head"])
    assert report.breaches == [
        f"{CODE}: the chain ends at seq 4, before the expected head 6: entries were removed"
    ]
    assert_cli_breach(
        cli_verify(db_url, "--head", head_arg(books["head"])),
        "the chain ends at seq 4, before the expected head 6",
    )

    # The forger then appends two new entries so that the chain is six long again: the chain
    # continues cleanly from the forged head, and the printed head still disagrees at seq 6.
    with session_factory() as s:
        for n in (1, 2):
            ledger.award(
                s,
                scheme=books["scheme"],
                subject_id=books["h2"],
                points=n,
                idem_key=f"cover:{n}",
                actor_id=None,
                now=books["now"] + timedelta(hours=2),
            )
        s.commit()
        assert ledger.chain_head(s, vid)[0] == 6
    assert verify_now(session_factory).ok
    assert verify_now(session_factory, books["head"]).breaches == [
        f"{CODE}: entry seq 6 no longer has the hash {books['head'][1]}"
    ]


def test_a_cached_balance_edit_alone_is_reported(engine, books, session_factory):
    # The guards do not cover accounts (balances change on every write), so no need to drop them.
    sql(
        engine,
        "UPDATE accounts SET balance = balance + 100 WHERE household_id = :h AND kind = 'lot'",
        h=books["h1"],
    )
    with session_factory() as s:
        key = s.execute(
            select(Account.key).where(Account.household_id == books["h1"], Account.kind == "lot")
        ).scalar_one()
    report = verify_now(session_factory)
    assert report.breaches == [f"{CODE}: account {key} caches 142 but its postings sum to 42"]
