"""A deleted entry that a claim still names: `verify` and `points verify` name the breach.

Deleting such an entry takes more than dropping the append-only guards: the claim's foreign
key refuses it, so the tamperer switches foreign keys off too. The claim row then names an
entry that is gone; `points verify` used to crash with a traceback at start-up on SQLite (the
migration check tripped over the broken key) instead of naming the breach.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, text

from points import claims
from points.claims import ClaimInput
from points.ledger.verify import verify
from points.models import Claim, JournalEntry
from tests.factories import adopt_catalog, make_household, make_scheme, make_user, make_village
from tests.points.test_ledger_tamper import CODE, assert_cli_breach, cli_verify, drop_guards

RULE = {
    "code": "MEI-01",
    "name": "庭院整洁",
    "category": "德治",
    "sign": 1,
    "points": 5,
    "unit": "time",
    "review": "never",
    "recorder_roles": ["admin"],
    "subjects": ["household"],
}


def delete_with_foreign_keys_off(engine, entry_id: int) -> None:
    """What an owner can do: switch foreign keys off, then delete the entry and its postings."""
    statements = (
        "DELETE FROM postings WHERE entry_id = :e",
        "DELETE FROM journal_entries WHERE id = :e",
    )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # (On Citus the setting must reach the workers too; elsewhere the first line only
            # sets a placeholder.)
            conn.execute(text("SET LOCAL citus.propagate_set_commands = 'local'"))
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                conn.execute(text(statement), {"e": entry_id})
        return
    raw = engine.raw_connection()
    try:
        sqlite = raw.driver_connection
        sqlite.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, or it is ignored
        for statement in statements:
            sqlite.execute(statement.replace(":e", "?"), (entry_id,))
        sqlite.commit()
    finally:
        raw.close()


def test_a_deleted_entry_named_by_a_claim_is_a_breach_not_a_crash(
    engine, db_url, session_factory, now
):
    with session_factory() as s:
        village = make_village(s, code=CODE)
        scheme = make_scheme(s, village, notice_days=7)
        adopt_catalog(s, scheme, [RULE], now=now)
        home = make_household(s, village)
        admin = make_user(s, village, "admin")
        item = ClaimInput(household_id=home.id, rule_code="MEI-01", occurred_on=date(2026, 11, 25))
        claim = claims.record(s, village=village, scheme=scheme, actor=admin, item=item, now=now)
        claims.post_due(s, now=now + timedelta(days=7))
        s.commit()
        claim_id, entry_id = claim.id, claim.entry_id
        assert s.get(JournalEntry, entry_id).seq == 1
    with session_factory() as s:
        assert verify(s).ok

    drop_guards(engine)
    delete_with_foreign_keys_off(engine, entry_id)
    with session_factory() as s:
        assert s.execute(select(Claim.entry_id).where(Claim.id == claim_id)).scalar_one() == (
            entry_id
        )
        breaches = verify(s, village_code=CODE).breaches
    named = (
        f"{CODE}: claims row {claim_id} names journal entry id {entry_id} (entry_id), "
        "which no longer exists: an entry was deleted"
    )
    assert named in breaches
    result = cli_verify(db_url)
    assert "Traceback" not in result.stderr, result.stderr
    assert_cli_breach(result, f"claims row {claim_id} names journal entry id {entry_id}")
