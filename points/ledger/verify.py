"""Re-check every ledger invariant from the stored rows, trusting nothing the writers cached."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from points.db import Base
from points.ledger.journal import (
    GENESIS_HASH,
    HASHED_FIELDS,
    HASHED_REFERENCES,
    entry_hash,
    in_values,
    utc_text,
)
from points.models import (
    Account,
    ChainHead,
    JournalEntry,
    MovedId,
    Posting,
    Village,
    VillageMove,
)

CHAIN_BATCH = 2000


@dataclass
class VerifyReport:
    """What verify found: breaches (first one first) and each village's head."""

    breaches: list[str] = field(default_factory=list)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.breaches


def verify(
    session: Session,
    *,
    village_code: str | None = None,
    expected_head: tuple[int, str] | None = None,
) -> VerifyReport:
    """Check sums, cached balances, signs, keys, reversals and each village's hash chain.

    `expected_head` (seq, hash), as printed on a board or statement, must still be on the
    chain: a chain that is shorter, or that has another hash at that seq, is a breach.
    """
    report = VerifyReport()
    q = select(Village).order_by(Village.id)
    if village_code:
        q = q.where(Village.code == village_code)
    villages = session.execute(q).scalars().all()
    if village_code and not villages:
        report.breaches.append(f"village {village_code!r} does not exist")
        return report
    for village in villages:
        _check_village(session, village, report)
        if expected_head is not None and (village_code or len(villages) == 1):
            _check_expected_head(session, village, expected_head, report)
    return report


def _check_village(session: Session, village: Village, report: VerifyReport) -> None:
    vid, name = village.id, village.code
    breach = report.breaches.append

    # Entries whose postings do not balance are the village's first breaches; the chain walk
    # below reads every entry's postings anyway and finds them there (see _unbalanced).
    first = len(report.breaches)

    # One pass over the village's postings, per account: its sum, and how many postings name
    # an entry or an account that is not this village's (written as joins on village_id too,
    # so that Citus runs it on one worker). The sums, the crossings and the cached balances
    # below come from it instead of a scan of the postings each.
    p, e, a = Posting.__table__, JournalEntry.__table__.alias("e"), Account.__table__.alias("a")
    no_entry, no_account = e.c.id.is_(None), a.c.id.is_(None)
    per_account = session.execute(
        select(
            p.c.account_id,
            func.sum(p.c.amount),
            func.sum(case((no_entry, 1), else_=0)),
            func.sum(case((or_(no_entry, no_account), 1), else_=0)),
        )
        .select_from(
            p.outerjoin(
                e, and_(e.c.id == p.c.entry_id, e.c.village_id == p.c.village_id)
            ).outerjoin(a, and_(a.c.id == p.c.account_id, a.c.village_id == p.c.village_id))
        )
        .where(p.c.village_id == vid)
        .group_by(p.c.account_id)
    ).all()
    sums = {account_id: amount for account_id, amount, _, _ in per_account}
    without_entry = sum(n for _, _, n, _ in per_account)

    total = sum(sums.values())
    if total != 0:
        breach(f"{name}: all postings sum to {total}, not zero")

    foreign = sum(n for _, _, _, n in per_account)
    if foreign:
        breach(f"{name}: {foreign} postings cross into another village")

    # The village's accounts (a few per household and period, far fewer than its entries).
    accounts = session.execute(
        select(Account.id, Account.key, Account.kind, Account.balance)
        .where(Account.village_id == vid)
        .order_by(Account.id)
    ).all()
    drift = [
        (key, cached, sums.get(account_id, 0))
        for account_id, key, _, cached in accounts
        if cached is not None and cached != sums.get(account_id, 0)
    ]
    for key, cached, actual in drift[:5]:
        breach(f"{name}: account {key} caches {cached} but its postings sum to {actual}")

    for _, key, kind, bal in accounts:
        if bal is not None and (kind == "lot" and bal < 0 or kind == "owed" and bal > 0):
            breach(f"{name}: account {key} has the forbidden balance {bal}")

    for col, what in (
        (JournalEntry.idem_key, "idempotency key"),
        (JournalEntry.reverses_id, "reversal of entry id"),
    ):
        dupes = session.execute(
            select(col, func.count())
            .where(JournalEntry.village_id == vid, col.is_not(None))
            .group_by(col)
            .having(func.count() > 1)
            .limit(5)
        ).all()
        for value, count in dupes:
            breach(f"{name}: {what} {value!r} appears {count} times")

    _check_references(session, village, report, postings_dangling=without_entry > 0)

    walk = _check_chain(session, village, report)
    seq, head_hash = walk.seq, walk.hash
    unbalanced = _unbalanced(session, village, walk)
    report.breaches[first:first] = [
        f"{name}: entry seq {s} has {count} postings summing to {total}, not zero"
        for s, total, count in unbalanced
    ]
    stored = session.execute(
        select(ChainHead.seq, ChainHead.hash).where(ChainHead.village_id == vid)
    ).first()
    if seq and (stored is None or (stored.seq, stored.hash) != (seq, head_hash)):
        breach(
            f"{name}: the stored chain head {tuple(stored) if stored else None} "
            f"is not the last entry ({seq}, {head_hash[:12]}…)"
        )
    report.heads[name] = (seq, head_hash)


@dataclass
class _Walk:
    """Where the chain walk got to, and what it saw on the way."""

    seq: int = 0
    hash: str = GENESIS_HASH
    complete: bool = False  # reached the end of the chain with no breach
    entries: int = 0
    unbalanced: list[tuple[int, int, int]] = field(default_factory=list)  # first 5: seq, sum, n


def _unbalanced(session: Session, village: Village, walk: _Walk) -> list[tuple[int, int, int]]:
    """The first five entries (by seq) whose postings do not sum to zero or are fewer than two.

    When the walk went through the whole chain and the chain holds every entry of the village,
    the walk saw each entry with its postings: its findings are the answer, and one count
    checks the second condition. Otherwise (a breach stopped it, or an entry is off the chain)
    one GROUP BY over all the village's entries answers.
    """
    if walk.complete:
        count = session.execute(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.village_id == village.id)
        ).scalar_one()
        if count == walk.entries:
            return walk.unbalanced
    total = func.coalesce(func.sum(Posting.amount), 0)
    rows = session.execute(
        select(JournalEntry.seq, total, func.count(Posting.id))
        .outerjoin(
            Posting,
            and_(
                Posting.entry_id == JournalEntry.id, Posting.village_id == JournalEntry.village_id
            ),
        )
        .where(JournalEntry.village_id == village.id)
        .group_by(JournalEntry.id, JournalEntry.seq)
        .having((total != 0) | (func.count(Posting.id) < 2))
        .order_by(JournalEntry.seq)
        .limit(5)
    ).all()
    return [tuple(r) for r in rows]


def _entry_references() -> list:
    """Every column of the schema that names a journal entry (claims, redemptions, boards,
    reversals, postings), found from the foreign keys so a new one is checked too."""
    return sorted(
        (
            (table, fk.parent)
            for table in Base.metadata.tables.values()
            for fk in table.foreign_keys
            if fk.column.table.name == JournalEntry.__tablename__
        ),
        key=lambda pair: (pair[0].name, pair[1].name),
    )


def _check_references(
    session: Session, village: Village, report: VerifyReport, *, postings_dangling: bool = True
) -> None:
    """Name every row that points at a journal entry that no longer exists (a deleted entry
    whose guard and foreign key were dropped): the row stays, the entry is gone.

    The postings are looked at only when the postings pass found one without its entry.
    """
    entries = JournalEntry.__table__.alias("referenced")
    for table, column in _entry_references():
        if "village_id" not in table.c:
            continue
        if table is Posting.__table__ and not postings_dangling:
            continue
        # No ORDER BY .. LIMIT here: PostgreSQL would walk the whole table in id order looking
        # for five rows that, on a sound ledger, do not exist (once per village: quadratic).
        # The anti-join finds none; the first five by id are picked in Python.
        dangling = session.execute(
            select(table.c.id, column)
            .outerjoin(
                entries,
                and_(entries.c.id == column, entries.c.village_id == table.c.village_id),
            )
            .where(table.c.village_id == village.id, column.is_not(None), entries.c.id.is_(None))
        ).all()
        for row_id, missing in sorted(dangling)[:5]:
            report.breaches.append(
                f"{village.code}: {table.name} row {row_id} names journal entry id {missing} "
                f"({column.name}), which no longer exists: an entry was deleted"
            )


# The hashed fields in the canonical JSON's key order ("postings" sorts among them): the
# walk selects them in this order and builds the same bytes as `entry_hash` directly.
_SORTED_FIELDS = tuple(sorted(HASHED_FIELDS))
_POSTINGS_AT = sorted((*HASHED_FIELDS, "postings")).index("postings")
_PREFIXES = tuple(encode_basestring(f) + ":" for f in _SORTED_FIELDS)
_BEFORE, _AFTER = _PREFIXES[:_POSTINGS_AT], _PREFIXES[_POSTINGS_AT:]
# How the canonical encoder writes each type a row holds; any other type is not fast-pathed.
_ENCODE = {
    str: encode_basestring,
    int: int.__repr__,
    datetime: lambda v: encode_basestring(utc_text(v)),
}


def _row_hash(prev_hash: str, values, postings: list[tuple[int, int]]) -> str | None:
    """`entry_hash` of a row read in `_SORTED_FIELDS` order, without building a dict; None
    if a value is of a type this fast path does not encode (the caller then uses entry_hash).

    json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes an int
    as int.__repr__ and a str with encode_basestring; `entry_hash` leaves out None values and
    writes datetimes as their UTC text, the postings as sorted [account, amount] pairs.
    tests/points/test_verify_hash.py checks the two agree, byte for byte.
    """
    try:
        head = [
            p + _ENCODE[type(v)](v)
            for p, v in zip(_BEFORE, values[:_POSTINGS_AT], strict=True)
            if v is not None
        ]
        tail = [
            p + _ENCODE[type(v)](v)
            for p, v in zip(_AFTER, values[_POSTINGS_AT:], strict=True)
            if v is not None
        ]
    except KeyError:  # a bool, a float, a subclass: let entry_hash decide
        return None
    head.append('"postings":[' + ",".join(f"[{a},{b}]" for a, b in postings) + "]")
    body = "{" + ",".join(head + tail) + "}"
    return hashlib.sha256(prev_hash.encode() + b"\n" + body.encode()).hexdigest()


def _check_chain(session: Session, village: Village, report: VerifyReport) -> _Walk:
    """Walk the chain in seq order in batches; return where it got to (the head reached)."""
    name = village.code
    walk = _Walk()
    je, p = JournalEntry.__table__, Posting.__table__
    # Core columns (no ORM loading): a million rows are read, by position.
    cols = [je.c[f] for f in _SORTED_FIELDS]
    moved_through, id_map = _move_map(session, village.id)
    seq_at, prev_at = 2 + _SORTED_FIELDS.index("seq"), 2 + _SORTED_FIELDS.index("prev_hash")
    while True:
        rows = session.execute(
            select(je.c.id, je.c.hash, *cols)
            .where(je.c.village_id == village.id, je.c.seq > walk.seq)
            .order_by(je.c.seq)
            .limit(CHAIN_BATCH)
        ).all()
        if not rows:
            walk.complete = True
            return walk
        postings: dict[int, list[tuple[int, int]]] = {}
        for entry_id, account_id, amount in session.execute(
            # One array parameter on PostgreSQL (ANY), not an IN list of 2,000 parameters;
            # the village's own postings, as the GROUP BY in _unbalanced counts them.
            select(p.c.entry_id, p.c.account_id, p.c.amount).where(
                p.c.village_id == village.id,
                in_values(session, p.c.entry_id, [r[0] for r in rows]),
            )
        ).all():  # fetched at once: iterating the result fetches row by row
            postings.setdefault(entry_id, []).append((account_id, amount))
        for row in rows:
            entry_id, row_hash, seq, row_prev = row[0], row[1], row[seq_at], row[prev_at]
            report.entries += 1
            if seq != walk.seq + 1:
                report.breaches.append(
                    f"{name}: chain gap: expected seq {walk.seq + 1}, found {seq}"
                )
                return walk
            if row_prev != walk.hash:
                report.breaches.append(f"{name}: entry seq {seq} does not link to seq {seq - 1}")
                return walk
            lines = postings.get(entry_id, [])
            walk.entries += 1
            if len(walk.unbalanced) < 5 and (len(lines) < 2 or sum(b for _, b in lines)):
                walk.unbalanced.append((seq, sum(b for _, b in lines), len(lines)))
            if seq <= moved_through:
                fields = dict(zip(_SORTED_FIELDS, row[2:], strict=True))
                try:
                    fields, lines = _as_hashed(fields, lines, id_map)
                except KeyError as exc:
                    report.breaches.append(
                        f"{name}: entry seq {seq} names {exc.args[0]}, "
                        "which the village's move map does not know"
                    )
                    return walk
                actual = entry_hash(walk.hash, fields, lines)
            else:
                lines.sort()
                actual = _row_hash(walk.hash, row[2:], lines)
                if actual is None:
                    fields = dict(zip(_SORTED_FIELDS, row[2:], strict=True))
                    actual = entry_hash(walk.hash, fields, lines)
            if actual != row_hash:
                report.breaches.append(
                    f"{name}: entry seq {seq} was altered (its hash does not match its content)"
                )
                return walk
            walk.hash, walk.seq = row_hash, seq
        if len(rows) < CHAIN_BATCH:  # a short batch was the rest of the chain
            walk.complete = True
            return walk


def _move_map(session: Session, village_id: int) -> tuple[int, dict[str, dict[int, int]]]:
    """Return (the last seq hashed in another database, new id -> hashed id per table).

    A village moved here (points.backups.move) kept its entries and hashes, but its rows have
    new ids; the map, append-only and a bijection per table (its keys are UNIQUE both ways),
    gives back the ids each imported entry was hashed with. (0, {}) for a village never moved.
    """
    through = session.execute(
        select(VillageMove.through_seq).where(VillageMove.village_id == village_id)
    ).scalar_one_or_none()
    if not through:
        return 0, {}
    id_map: dict[str, dict[int, int]] = {}
    for kind, new_id, old_id in session.execute(
        select(MovedId.kind, MovedId.new_id, MovedId.old_id).where(MovedId.village_id == village_id)
    ):
        id_map.setdefault(kind, {})[new_id] = old_id
    return through, id_map


def _as_hashed(
    fields: dict, postings: list[tuple[int, int]], id_map: dict[str, dict[int, int]]
) -> tuple[dict, list[tuple[int, int]]]:
    """Return an imported entry's fields and postings with the ids it was hashed with."""
    out = dict(fields)
    for field_name, table in HASHED_REFERENCES.items():
        value = out.get(field_name)
        if value is not None:
            try:
                out[field_name] = id_map[table][value]
            except KeyError:
                raise KeyError(f"{table} id {value}") from None
    lines = []
    for account_id, amount in postings:
        try:
            lines.append((id_map["accounts"][account_id], amount))
        except KeyError:
            raise KeyError(f"accounts id {account_id}") from None
    return out, lines


def _check_expected_head(
    session: Session, village: Village, head: tuple[int, str], report: VerifyReport
) -> None:
    seq, hash_ = head
    reached = report.heads.get(village.code, (0, GENESIS_HASH))[0]
    if reached < seq:
        report.breaches.append(
            f"{village.code}: the chain ends at seq {reached}, before the expected head {seq}: "
            "entries were removed"
        )
        return
    stored = session.execute(
        select(JournalEntry.hash).where(
            JournalEntry.village_id == village.id, JournalEntry.seq == seq
        )
    ).scalar_one_or_none()
    if stored is None or not stored.startswith(hash_.lower()):
        report.breaches.append(f"{village.code}: entry seq {seq} no longer has the hash {hash_}")
