"""Re-check every ledger invariant from the stored rows, trusting nothing the writers cached."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from points.db import Base
from points.ledger.journal import (
    GENESIS_HASH,
    HASHED_FIELDS,
    HASHED_REFERENCES,
    entry_hash,
    in_values,
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

    unbalanced = session.execute(
        select(JournalEntry.seq, func.coalesce(func.sum(Posting.amount), 0), func.count(Posting.id))
        .outerjoin(
            Posting,
            and_(
                Posting.entry_id == JournalEntry.id, Posting.village_id == JournalEntry.village_id
            ),
        )
        .where(JournalEntry.village_id == vid)
        .group_by(JournalEntry.id, JournalEntry.seq)
        .having((func.coalesce(func.sum(Posting.amount), 0) != 0) | (func.count(Posting.id) < 2))
        .order_by(JournalEntry.seq)
        .limit(5)
    ).all()
    for seq, total, count in unbalanced:
        breach(f"{name}: entry seq {seq} has {count} postings summing to {total}, not zero")

    total = session.execute(
        select(func.coalesce(func.sum(Posting.amount), 0)).where(Posting.village_id == vid)
    ).scalar_one()
    if total != 0:
        breach(f"{name}: all postings sum to {total}, not zero")

    # A posting of this village must name an entry and an account of this village. (Written
    # with EXISTS on rows of this village only, so that Citus runs it on one worker.)
    entry_here = exists().where(JournalEntry.village_id == vid, JournalEntry.id == Posting.entry_id)
    account_here = exists().where(Account.village_id == vid, Account.id == Posting.account_id)
    foreign = session.execute(
        select(func.count())
        .select_from(Posting)
        .where(Posting.village_id == vid, ~entry_here | ~account_here)
    ).scalar_one()
    if foreign:
        breach(f"{name}: {foreign} postings cross into another village")

    sums = (
        select(Posting.account_id, func.sum(Posting.amount).label("total"))
        .where(Posting.village_id == vid)
        .group_by(Posting.account_id)
        .subquery()
    )
    drift = session.execute(
        select(Account.key, Account.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == Account.id)
        .where(
            Account.village_id == vid,
            Account.balance.is_not(None),
            Account.balance != func.coalesce(sums.c.total, 0),
        )
        .limit(5)
    ).all()
    for key, cached, actual in drift:
        breach(f"{name}: account {key} caches {cached} but its postings sum to {actual}")

    negative = session.execute(
        select(Account.key, Account.balance).where(
            Account.village_id == vid,
            ((Account.kind == "lot") & (Account.balance < 0))
            | ((Account.kind == "owed") & (Account.balance > 0)),
        )
    ).all()
    for key, bal in negative:
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

    _check_references(session, village, report)

    seq, head_hash = _check_chain(session, village, report)
    stored = session.execute(
        select(ChainHead.seq, ChainHead.hash).where(ChainHead.village_id == vid)
    ).first()
    if seq and (stored is None or (stored.seq, stored.hash) != (seq, head_hash)):
        breach(
            f"{name}: the stored chain head {tuple(stored) if stored else None} "
            f"is not the last entry ({seq}, {head_hash[:12]}…)"
        )
    report.heads[name] = (seq, head_hash)


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


def _check_references(session: Session, village: Village, report: VerifyReport) -> None:
    """Name every row that points at a journal entry that no longer exists (a deleted entry
    whose guard and foreign key were dropped): the row stays, the entry is gone."""
    entries = JournalEntry.__table__.alias("referenced")
    for table, column in _entry_references():
        if "village_id" not in table.c:
            continue
        dangling = session.execute(
            select(table.c.id, column)
            .outerjoin(
                entries,
                and_(entries.c.id == column, entries.c.village_id == table.c.village_id),
            )
            .where(table.c.village_id == village.id, column.is_not(None), entries.c.id.is_(None))
            .order_by(table.c.id)
            .limit(5)
        ).all()
        for row_id, missing in dangling:
            report.breaches.append(
                f"{village.code}: {table.name} row {row_id} names journal entry id {missing} "
                f"({column.name}), which no longer exists: an entry was deleted"
            )


def _check_chain(session: Session, village: Village, report: VerifyReport) -> tuple[int, str]:
    """Walk the chain in seq order in batches; return the head actually reached."""
    name = village.code
    expected_seq, prev = 1, GENESIS_HASH
    cols = [getattr(JournalEntry, f) for f in HASHED_FIELDS]
    last_seq = 0
    moved_through, id_map = _move_map(session, village.id)
    seq_at, prev_at = 2 + HASHED_FIELDS.index("seq"), 2 + HASHED_FIELDS.index("prev_hash")
    while True:
        rows = session.execute(
            select(JournalEntry.id, JournalEntry.hash, *cols)
            .where(JournalEntry.village_id == village.id, JournalEntry.seq >= expected_seq)
            .order_by(JournalEntry.seq)
            .limit(CHAIN_BATCH)
        ).all()
        if not rows:
            return last_seq, prev
        postings: dict[int, list[tuple[int, int]]] = {}
        for entry_id, account_id, amount in session.execute(
            # One array parameter on PostgreSQL (ANY), not an IN list of 2,000 parameters.
            select(Posting.entry_id, Posting.account_id, Posting.amount).where(
                in_values(session, Posting.entry_id, [r[0] for r in rows])
            )
        ):
            postings.setdefault(entry_id, []).append((account_id, amount))
        for row in rows:
            # By position (id, hash, then HASHED_FIELDS in order): a million entries are read.
            entry_id, row_hash, seq, row_prev = row[0], row[1], row[seq_at], row[prev_at]
            report.entries += 1
            if seq != expected_seq:
                report.breaches.append(
                    f"{name}: chain gap: expected seq {expected_seq}, found {seq}"
                )
                return last_seq, prev
            if row_prev != prev:
                report.breaches.append(f"{name}: entry seq {seq} does not link to seq {seq - 1}")
                return last_seq, prev
            fields = dict(zip(HASHED_FIELDS, row[2:], strict=True))
            lines = postings.get(entry_id, [])
            if seq <= moved_through:
                try:
                    fields, lines = _as_hashed(fields, lines, id_map)
                except KeyError as exc:
                    report.breaches.append(
                        f"{name}: entry seq {seq} names {exc.args[0]}, "
                        "which the village's move map does not know"
                    )
                    return last_seq, prev
            if entry_hash(prev, fields, lines) != row_hash:
                report.breaches.append(
                    f"{name}: entry seq {seq} was altered (its hash does not match its content)"
                )
                return last_seq, prev
            prev, last_seq, expected_seq = row_hash, seq, seq + 1


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
