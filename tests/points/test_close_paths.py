"""The close's set-based expiry writes exactly what the general path writes.

`expire_lots(locked=…)` (the period close) builds its entries, request hashes and chain hashes
its own way; the general path (`expire_lots` without it) plans them through `_post`. Expiring
the same lots both ways, from the same state, must give the same journal, byte for byte.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from points import ledger
from points.ledger import journal
from points.ledger.verify import verify
from points.models import Account, JournalEntry, Posting, Resident
from points.models.catalog import SubjectKind
from points.models.ledger import AccountKind
from tests.factories import make_household, make_scheme, make_village
from tests.points.test_cycles import bj

CLOSE_AT = bj(2027, 1, 1, 0, 5)


def _journal(session, village_id, after_seq):
    entries = session.execute(
        select(JournalEntry)
        .where(JournalEntry.village_id == village_id, JournalEntry.seq > after_seq)
        .order_by(JournalEntry.seq)
    ).scalars()
    rows = []
    for e in entries:
        postings = session.execute(
            select(Posting.account_id, Posting.amount)
            .where(Posting.entry_id == e.id)
            .order_by(Posting.account_id)
        ).all()
        fields = {c: getattr(e, c) for c in ledger.HASHED_FIELDS}
        rows.append((fields, e.hash, [tuple(p) for p in postings]))
    lots = session.execute(
        select(Account.id, Account.balance, Account.closed_at)
        .where(Account.village_id == village_id, Account.kind == "lot")
        .order_by(Account.id)
    ).all()
    return rows, [tuple(lot) for lot in lots]


def test_locked_and_general_expiry_write_the_same_journal(session):
    village = make_village(session)
    households = make_scheme(session, village, close_policy="reset")
    people = make_scheme(
        session, village, code="party", name="党员积分", subject_kind=SubjectKind.RESIDENT
    )
    homes = [make_household(session, village, members=1) for _ in range(6)]
    residents = [
        session.execute(select(Resident.id).where(Resident.household_id == h.id)).scalar_one()
        for h in homes[:3]
    ]
    for i, home in enumerate(homes):
        when = bj(2026, 8 if i % 3 == 0 else 11, 2, 9)  # some lots of Q3 (stragglers), most Q4
        ledger.award(
            session,
            scheme=households,
            subject_id=home.id,
            points=3 + i,
            idem_key=f"h:{i}",
            actor_id=None,
            now=when,
        )
    for i, rid in enumerate(residents):
        ledger.award(
            session,
            scheme=people,
            subject_id=rid,
            points=10 + i,
            idem_key=f"r:{i}",
            actor_id=None,
            now=bj(2026, 11, 3, 9),
        )
    # One household spends its whole lot: an empty lot closes without an entry.
    ledger.spend(
        session,
        scheme=households,
        subject_id=homes[1].id,
        points=4,
        idem_key="spend",
        actor_id=None,
        now=bj(2026, 12, 1, 9),
    )
    # The `expired` account exists before either run (a rolled-back id is not reused on
    # PostgreSQL, and account ids are hashed with the postings).
    ledger.journal._system_account(session, village.id, AccountKind.EXPIRED)
    session.flush()
    seq, _ = ledger.chain_head(session, village.id)

    def expire(locked: bool):
        ids = []
        for scheme in (households, people):
            lots = session.execute(
                select(*ledger.LOCKED_LOT_COLUMNS)
                .where(
                    Account.village_id == village.id,  # one worker on Citus
                    Account.scheme_id == scheme.id,
                    Account.kind == "lot",
                )
                .order_by(Account.id)
                .with_for_update()
            ).all()
            ids += ledger.expire_lots(
                session,
                lot_ids=[lot.id for lot in lots],
                now=CLOSE_AT,
                locked=lots if locked else None,
            )
        session.flush()
        return [i is None for i in ids], _journal(session, village.id, seq)

    savepoint = session.begin_nested()
    general = expire(locked=False)
    savepoint.rollback()
    session.expire_all()
    locked = expire(locked=True)

    assert locked[0] == general[0]  # the same lots got an entry (not the emptied one)
    assert sum(locked[0]) == 1
    (locked_rows, locked_lots), (general_rows, general_lots) = locked[1], general[1]
    assert len(locked_rows) == 8  # 5 household lots with points, 3 residents'
    assert locked_rows == general_rows
    assert locked_lots == general_lots
    assert all(balance == 0 and closed is not None for _, balance, closed in locked_lots)
    assert verify(session).ok


def test_a_hash_template_that_drifts_from_entry_hash_stops_the_close(session, monkeypatch):
    """The set-based close hashes from a template; its first entry of each shape is hashed by
    `entry_hash` too, so a template that no longer matches refuses instead of forking."""
    village = make_village(session)
    scheme = make_scheme(session, village, close_policy="reset")
    home = make_household(session, village, members=1)
    ledger.award(
        session,
        scheme=scheme,
        subject_id=home.id,
        points=5,
        idem_key="a",
        actor_id=None,
        now=bj(2026, 11, 2, 9),
    )
    session.flush()
    real = journal._expiry_form

    def drifted(*args):
        form = real(*args)
        return dataclasses.replace(form, text=form.text.replace('"expiry"', '"expiry "'))

    monkeypatch.setattr(journal, "_expiry_form", drifted)
    lots = session.execute(
        select(*ledger.LOCKED_LOT_COLUMNS).where(
            Account.village_id == village.id, Account.kind == "lot"
        )
    ).all()
    with pytest.raises(RuntimeError, match="template"):
        ledger.expire_lots(session, lot_ids=[lot.id for lot in lots], now=CLOSE_AT, locked=lots)
