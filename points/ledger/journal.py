"""Post, reverse and query the ledger: the only code that writes journal entries.

Every write goes through `_post`: plan the postings from current balances, apply them to the
subjects' cached balances with conditional UPDATEs (the database refuses a lot below zero), then
take the village's chain lock and append the entries with gapless `seq` and a hash chain.
Planning happens before the lock so that the database, not the lock, is what stops a double spend;
a conditional UPDATE that loses a race rolls back to a savepoint and plans again.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import (
    String,
    Text,
    and_,
    any_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from points.db import bulk_postgresql, insert_rows, lock_village
from points.errors import (
    AlreadyReversedError,
    ConflictError,
    DuplicateRequestError,
    InsufficientPointsError,
    NotFoundError,
    PeriodClosedError,
    ValidationError,
)
from points.models import Account, ChainHead, JournalEntry, Posting, Scheme
from points.models.catalog import SubjectKind
from points.models.ledger import AccountKind, EntryKind
from points.periods import local_date, month_key, period_key, period_start

GENESIS_HASH = "0" * 64
# json.dumps(obj, **options) is JSONEncoder(**options).encode(obj): the same bytes, one encoder.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_REQUEST_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode
MAX_ATTEMPTS = 64  # each retry follows a competing commit, so this bounds contention, not time


# ---------------------------------------------------------------------------------------------
# Plain values passed around while planning
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """Who holds the points: a household or a resident, within one scheme."""

    scheme_id: int
    village_id: int
    household_id: int | None = None
    resident_id: int | None = None

    @classmethod
    def of(cls, scheme: Scheme, subject_id: int) -> Subject:
        """Return the subject `subject_id` of the scheme's subject kind."""
        if scheme.subject_kind == SubjectKind.HOUSEHOLD:
            return cls(scheme.id, scheme.village_id, household_id=subject_id)
        return cls(scheme.id, scheme.village_id, resident_id=subject_id)

    @property
    def tag(self) -> str:
        return f"h{self.household_id}" if self.household_id else f"r{self.resident_id}"


@dataclass
class _Draft:
    """An entry planned but not yet appended; postings are (account_id, amount)."""

    fields: dict
    postings: list[tuple[int, int]]


@dataclass(frozen=True)
class Balance:
    """A subject's position in a scheme. `available` can be spent; `owed` is <= 0."""

    available: int
    owed: int
    lots: tuple[tuple[str, int], ...]

    @property
    def net(self) -> int:
        return self.available + self.owed


@dataclass(frozen=True)
class AwardLine:
    """One award of a batch: `points` > 0 to the subject, under its own idempotency key."""

    subject_id: int
    points: int
    idem_key: str
    memo: str = ""
    category: str | None = None
    rule_id: int | None = None  # the catalog rule row it was earned under
    claim_id: int | None = None


class _Contention(Exception):
    """A conditional UPDATE matched no row: another transaction changed the balance first."""


# ---------------------------------------------------------------------------------------------
# Public writes
# ---------------------------------------------------------------------------------------------


def award(
    session: Session,
    *,
    scheme: Scheme,
    subject_id: int,
    points: int,
    idem_key: str,
    actor_id: int | None,
    now: datetime,
    memo: str = "",
    category: str | None = None,
    kind: EntryKind = EntryKind.AWARD,
    rule_id: int | None = None,
    claim_id: int | None = None,
) -> JournalEntry:
    """Credit `points` (> 0) to the subject's current lot, settling what it owes first."""
    line = AwardLine(subject_id, points, idem_key, memo, category, rule_id, claim_id)
    (entry_id,) = post_awards(
        session, scheme=scheme, lines=[line], actor_id=actor_id, now=now, kind=kind
    )
    return session.get(JournalEntry, entry_id)


def post_awards(
    session: Session,
    *,
    scheme: Scheme,
    lines: Sequence[AwardLine],
    actor_id: int | None,
    now: datetime,
    kind: EntryKind = EntryKind.AWARD,
) -> list[int]:
    """Post many awards in one append (an event batch, an import); return entry ids in order."""
    for line in lines:
        _require_positive(line.points)
    requests = [
        _request(
            scheme.village_id,
            line.idem_key,
            kind=kind,
            scheme=scheme.id,
            subject=line.subject_id,
            points=line.points,
            memo=line.memo,
            category=line.category,
            actor=actor_id,
            rule=line.rule_id,
            claim=line.claim_id,
        )
        for line in lines
    ]
    # Opening balances carried over from a paper 台账 come from their own account and are no
    # part of any period's score.
    source = AccountKind.OPENING if kind == EntryKind.OPENING else AccountKind.ISSUANCE

    def plan(pending: list[int]) -> list[_Draft]:
        subjects = {i: Subject.of(scheme, lines[i].subject_id) for i in pending}
        pkey = period_key(scheme.period_kind, local_date(now))
        month = month_key(local_date(now))
        lots = _ensure_lots(session, scheme, [subjects[i] for i in pending], pkey)
        owed = _owed_accounts(session, [subjects[i] for i in pending])
        system = _system_account(session, scheme.village_id, source)
        owed_left = {s: bal for s, (_, bal) in owed.items()}
        drafts = []
        for i in pending:
            line, subject = lines[i], subjects[i]
            settle = min(line.points, -owed_left.get(subject, 0))
            postings = [(system, -line.points)]
            if settle:
                owed_left[subject] += settle
                postings.append((owed[subject][0], settle))
            if line.points - settle:
                postings.append((lots[subject], line.points - settle))
            drafts.append(
                _draft(
                    requests[i],
                    kind,
                    subject,
                    pkey,
                    now,
                    0 if kind == EntryKind.OPENING else line.points,
                    line.memo,
                    line.category,
                    actor_id,
                    postings,
                    month=month,
                )
            )
            drafts[-1].fields.update(rule_id=line.rule_id, claim_id=line.claim_id)
        return drafts

    return _post(session, scheme.village_id, requests, plan)


def deduct(
    session: Session,
    *,
    scheme: Scheme,
    subject_id: int,
    points: int,
    idem_key: str,
    actor_id: int | None,
    now: datetime,
    memo: str = "",
    category: str | None = None,
    rule_id: int | None = None,
    claim_id: int | None = None,
) -> JournalEntry:
    """Take `points` (> 0) off the subject, oldest lots first; what it cannot pay becomes owed."""
    _require_positive(points)
    subject = Subject.of(scheme, subject_id)
    req = _request(
        scheme.village_id,
        idem_key,
        kind=EntryKind.DEDUCTION,
        scheme=scheme.id,
        subject=subject_id,
        points=points,
        memo=memo,
        category=category,
        actor=actor_id,
        rule=rule_id,
        claim=claim_id,
    )

    def plan(_pending: list[int]) -> list[_Draft]:
        system = _system_account(session, scheme.village_id, AccountKind.DEDUCTIONS)
        postings = [(system, points)] + _debit(session, subject, points, allow_owed=True)
        pkey = period_key(scheme.period_kind, local_date(now))
        draft = _draft(
            req,
            EntryKind.DEDUCTION,
            subject,
            pkey,
            now,
            -points,
            memo,
            category,
            actor_id,
            postings,
        )
        draft.fields.update(rule_id=rule_id, claim_id=claim_id)
        return [draft]

    return _post_single(session, scheme.village_id, req, plan)


def spend(
    session: Session,
    *,
    scheme: Scheme,
    subject_id: int,
    points: int,
    idem_key: str,
    actor_id: int | None,
    now: datetime,
    memo: str = "",
) -> JournalEntry:
    """Spend `points` (> 0) from the subject's open lots, oldest first; refuse if short."""
    _require_positive(points)
    subject = Subject.of(scheme, subject_id)
    req = _request(
        scheme.village_id,
        idem_key,
        kind=EntryKind.REDEMPTION,
        scheme=scheme.id,
        subject=subject_id,
        points=points,
        memo=memo,
        actor=actor_id,
    )

    def plan(_pending: list[int]) -> list[_Draft]:
        system = _system_account(session, scheme.village_id, AccountKind.REDEMPTIONS)
        postings = [(system, points)] + _debit(session, subject, points, allow_owed=False)
        pkey = period_key(scheme.period_kind, local_date(now))
        return [
            _draft(req, EntryKind.REDEMPTION, subject, pkey, now, 0, memo, None, actor_id, postings)
        ]

    return _post_single(session, scheme.village_id, req, plan)


def transfer(
    session: Session,
    *,
    scheme: Scheme,
    from_subject_id: int,
    to_subject_id: int,
    points: int | None,
    idem_key: str,
    actor_id: int | None,
    now: datetime,
    memo: str = "",
) -> JournalEntry | None:
    """Move points between two subjects of a scheme (households merged or split): one
    adjustment entry taking `points` (None: all the source holds) from the source's open lots,
    oldest first, and giving them to the target (its owed settled first, the rest to its
    current lot). Scores stay where they were earned. Returns None when there is nothing to
    move; refuses more than the source holds."""
    if from_subject_id == to_subject_id:
        raise ValidationError("不能把积分转给同一个对象")
    source = Subject.of(scheme, from_subject_id)
    target = Subject.of(scheme, to_subject_id)
    if points is None:
        points = get_balance(session, scheme=scheme, subject_id=from_subject_id).available
        if points <= 0:
            return None
    _require_positive(points)
    req = _request(
        scheme.village_id,
        idem_key,
        kind=EntryKind.ADJUSTMENT,
        scheme=scheme.id,
        subject=to_subject_id,
        source=from_subject_id,
        points=points,
        memo=memo,
        actor=actor_id,
    )

    def plan(_pending: list[int]) -> list[_Draft]:
        postings = _debit(session, source, points, allow_owed=False)
        postings += _credit(session, target, points, now)
        pkey = period_key(scheme.period_kind, local_date(now))
        return [
            _draft(req, EntryKind.ADJUSTMENT, target, pkey, now, 0, memo, None, actor_id, postings)
        ]

    return _post_single(session, scheme.village_id, req, plan)


def reverse(
    session: Session,
    *,
    entry_id: int,
    reason: str,
    actor_id: int | None,
    now: datetime,
    idem_key: str | None = None,
) -> JournalEntry:
    """Post the correcting entry of `entry_id`; it never fails for lack of points.

    The subject's side is recomputed from current balances (a lot already spent is not pushed
    below zero: the shortfall becomes owed); the system side mirrors the original exactly.
    """
    original = session.get(JournalEntry, entry_id)
    if original is None:
        raise NotFoundError("找不到要冲正的记录", entry_id=entry_id)
    if original.kind == EntryKind.REVERSAL:
        raise ConflictError("冲正记录本身不能再冲正", entry_id=entry_id)
    if not reason or not reason.strip():
        raise ValidationError("冲正必须填写原因", errors={"reason": ["请填写冲正原因"]})
    idem_key = idem_key or f"reverse:{entry_id}"
    req = _request(
        original.village_id,
        idem_key,
        kind=EntryKind.REVERSAL,
        entry=entry_id,
        reason=reason,
        actor=actor_id,
    )
    subject = Subject(
        original.scheme_id, original.village_id, original.household_id, original.resident_id
    )

    def not_reversed() -> None:
        if _reversal_of(session, entry_id) is not None:
            raise AlreadyReversedError(entry_id=entry_id)

    def plan(_pending: list[int]) -> list[_Draft]:
        not_reversed()
        kinds = _account_kinds(session, [a for a, _ in _posting_pairs(original)])
        postings = [(a, -amt) for a, amt in _posting_pairs(original) if not kinds[a].is_subject]
        net = -sum(amt for a, amt in _posting_pairs(original) if kinds[a].is_subject)
        if net > 0:
            postings += _credit(session, subject, net, now)
        elif net < 0:
            prefer = [a for a, amt in _posting_pairs(original) if amt > 0 and kinds[a].is_subject]
            postings += _debit(session, subject, -net, allow_owed=True, prefer=prefer)
        fields_subject = subject if original.scheme_id else None
        draft = _draft(
            req,
            EntryKind.REVERSAL,
            fields_subject,
            original.period_key,
            now,
            -original.score_delta,
            reason,
            original.category,
            actor_id,
            postings,
            month=original.month,
        )
        draft.fields["reverses_id"] = entry_id
        return [draft]

    return _post_single(session, original.village_id, req, plan, recheck=not_reversed)


def expire_lot(
    session: Session, *, account_id: int, now: datetime, idem_key: str | None = None
) -> JournalEntry | None:
    """Move a lot's whole remainder to `expired` and close it; None when it held nothing."""
    lot = session.execute(select(Account).where(Account.id == account_id)).scalar_one()
    if lot.kind != AccountKind.LOT:
        raise ValidationError("只能对积分批次执行到期清零")
    idem_key = idem_key or f"close:{lot.id}:{lot.period_key}"
    req = _request(lot.village_id, idem_key, kind=EntryKind.EXPIRY, lot=lot.id)
    subject = Subject(lot.scheme_id, lot.village_id, lot.household_id, lot.resident_id)
    existing = _find_entry(session, lot.village_id, idem_key)
    if existing is not None:
        return _replay(existing, req)

    def plan(_pending: list[int]) -> list[_Draft]:
        balance = _balances(session, [lot.id])[lot.id]
        if balance == 0:
            return []
        system = _system_account(session, lot.village_id, AccountKind.EXPIRED)
        postings = [(lot.id, -balance), (system, balance)]
        return [
            _draft(
                req,
                EntryKind.EXPIRY,
                subject,
                lot.period_key,
                now,
                0,
                f"{lot.period_key} 期积分到期清零",
                None,
                None,
                postings,
            )
        ]

    ids = _post(session, lot.village_id, [req], plan)
    session.execute(update(Account).where(Account.id == lot.id).values(closed_at=now))
    return session.get(JournalEntry, ids[0]) if ids and ids[0] else None


def expire_lots(session: Session, *, lot_ids: Sequence[int], now: datetime) -> list[int | None]:
    """Expire many lots of one village at once (a period close); return entry ids in order.

    The same entries, keys (`close:<lot>:<period>`) and guarantees as `expire_lot` for each
    lot, set-based: the lots and their balances are read in one statement, every balance is
    lowered by one conditional executemany, the entries are appended to the chain together,
    and the lots are marked closed by one UPDATE. None for a lot that held nothing.
    """
    if not lot_ids:
        return []
    # Plain rows, not ORM objects: a close reads every lot of the county this way.
    lots = {
        lot.id: lot
        for lot in session.execute(
            select(
                Account.id,
                Account.kind,
                Account.village_id,
                Account.scheme_id,
                Account.household_id,
                Account.resident_id,
                Account.period_key,
            ).where(in_values(session, Account.id, lot_ids))
        )
    }
    if any(lot.kind != AccountKind.LOT for lot in lots.values()) or len(lots) != len(set(lot_ids)):
        raise ValidationError("只能对积分批次执行到期清零")
    villages = {lot.village_id for lot in lots.values()}
    if len(villages) != 1:
        raise ValidationError("一次只能清零同一个村的积分批次")
    (village_id,) = villages
    ordered = [lots[i] for i in lot_ids]
    requests = [
        _request(village_id, f"close:{lot.id}:{lot.period_key}", kind=EntryKind.EXPIRY, lot=lot.id)
        for lot in ordered
    ]

    def plan(pending: list[int]) -> list[_Draft]:
        balances = {}
        for chunk in _chunks([ordered[i].id for i in pending], 500):
            balances.update(_balances(session, chunk))
        system = None
        drafts = []
        for i in pending:
            lot = ordered[i]
            balance = balances[lot.id]
            if balance == 0:
                continue
            if system is None:
                system = _system_account(session, village_id, AccountKind.EXPIRED)
            subject = Subject(lot.scheme_id, lot.village_id, lot.household_id, lot.resident_id)
            drafts.append(
                _draft(
                    requests[i],
                    EntryKind.EXPIRY,
                    subject,
                    lot.period_key,
                    now,
                    0,
                    f"{lot.period_key} 期积分到期清零",
                    None,
                    None,
                    [(lot.id, -balance), (system, balance)],
                )
            )
        return drafts

    ids = _post(session, village_id, requests, plan)
    for chunk in _chunks(list(lot_ids), 500):
        # Core, not an ORM-enabled UPDATE: no RETURNING of 500 ids to synchronise objects
        # (the lots were read as rows; an Account loaded elsewhere is expired at commit).
        session.connection().execute(
            update(Account)
            .where(Account.village_id == village_id, in_values(session, Account.id, chunk))
            .values(closed_at=now)
        )
    return ids


# ---------------------------------------------------------------------------------------------
# Public reads
# ---------------------------------------------------------------------------------------------


def get_balance(session: Session, *, scheme: Scheme, subject_id: int) -> Balance:
    """Return what the subject can spend now, what it owes, and its open lots by period."""
    subject = Subject.of(scheme, subject_id)
    rows = session.execute(
        select(Account.kind, Account.period_key, Account.balance)
        .where(_subject_filter(subject), Account.closed_at.is_(None))
        .order_by(Account.period_start)
    ).all()
    lots = tuple((p, b) for k, p, b in rows if k == AccountKind.LOT)
    owed = sum(b for k, _, b in rows if k == AccountKind.OWED)
    return Balance(available=sum(b for _, b in lots), owed=owed, lots=lots)


def period_score(
    session: Session,
    *,
    scheme: Scheme,
    subject_id: int,
    period: str | None = None,
    month: str | None = None,
) -> int:
    """Return the score: base score + awards - deductions in a scheme period, or in a month.

    A month's score carries no base score (the base is granted per scheme period).
    """
    subject = Subject.of(scheme, subject_id)
    q = select(func.coalesce(func.sum(JournalEntry.score_delta), 0)).where(
        JournalEntry.scheme_id == subject.scheme_id,
        JournalEntry.household_id.is_(None)
        if subject.household_id is None
        else JournalEntry.household_id == subject.household_id,
        JournalEntry.resident_id.is_(None)
        if subject.resident_id is None
        else JournalEntry.resident_id == subject.resident_id,
    )
    if month is not None:
        return int(session.execute(q.where(JournalEntry.month == month)).scalar_one())
    if period is None:
        raise ValidationError("请指定周期或月份")
    total = session.execute(q.where(JournalEntry.period_key == period)).scalar_one()
    return scheme.base_score + int(total)


def chain_head(session: Session, village_id: int) -> tuple[int, str]:
    """Return the village's chain head (seq, hash); (0, genesis) before the first entry."""
    row = session.execute(
        select(ChainHead.seq, ChainHead.hash).where(ChainHead.village_id == village_id)
    ).first()
    return (row.seq, row.hash) if row else (0, GENESIS_HASH)


def entry_hash(prev_hash: str, fields: dict, postings: Sequence[tuple[int, int]]) -> str:
    """Return sha256(prev_hash ‖ canonical bytes of the entry and its postings), hex."""
    data = {
        k: _utc_text(v) if isinstance(v, datetime) else v
        for k, v in fields.items()
        if v is not None
    }
    data["postings"] = sorted([int(a), int(b)] for a, b in postings)
    body = _CANONICAL_JSON(data)
    return hashlib.sha256(prev_hash.encode() + b"\n" + body.encode()).hexdigest()


# Fields of an entry covered by its hash (everything but its id and the hash itself).
HASHED_FIELDS = (
    "village_id",
    "seq",
    "kind",
    "scheme_id",
    "household_id",
    "resident_id",
    "period_key",
    "month",
    "score_delta",
    "category",
    "memo",
    "actor_id",
    "reverses_id",
    "idem_key",
    "request_hash",
    "created_at",
    "prev_hash",
    "rule_id",
    "claim_id",
)

# The hashed fields that hold row ids, and the table each names. With the postings' account ids
# they are what a move to another database renumbers (see points.backups.move and verify).
HASHED_REFERENCES = {
    "village_id": "villages",
    "scheme_id": "schemes",
    "household_id": "households",
    "resident_id": "residents",
    "actor_id": "users",
    "reverses_id": "journal_entries",
    "rule_id": "catalog_rules",
    "claim_id": "claims",
}
HASHED_ID_TABLES = tuple(sorted({*HASHED_REFERENCES.values(), "accounts"}))


# ---------------------------------------------------------------------------------------------
# The write path
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Req:
    village_id: int
    idem_key: str
    request_hash: str


def _request(village_id: int, idem_key: str, **payload) -> _Req:
    if not idem_key or len(idem_key) > 200:
        raise ValidationError("请求编号（Idempotency-Key）必须是 1–200 个字符")
    body = _REQUEST_JSON(payload)
    return _Req(village_id, idem_key, hashlib.sha256(body.encode()).hexdigest())


def _post_single(session: Session, village_id: int, req: _Req, plan, recheck=None) -> JournalEntry:
    (entry_id,) = _post(session, village_id, [req], plan, recheck)
    return session.get(JournalEntry, entry_id)


def _post(
    session: Session,
    village_id: int,
    requests: list[_Req],
    plan: Callable[[list[int]], list[_Draft]],
    recheck: Callable[[], None] | None = None,
) -> list[int | None]:
    """Plan, apply balances, lock, append; replay requests whose key was already used.

    `recheck` runs again under the chain lock what `plan` checked before it (a competing
    commit may have made it false meanwhile).
    """
    results: dict[int, int | None] = {}
    pending = _resolve_replays(session, village_id, requests, results)
    for _ in range(MAX_ATTEMPTS):
        if not pending:
            break
        savepoint = session.begin_nested()
        try:
            drafts = plan(pending)
            _apply(session, village_id, drafts)
        except _Contention:
            savepoint.rollback()
            continue
        except ConflictError:
            savepoint.rollback()
            # Refused on balances a competing commit changed: when that commit was this same
            # request (same key), its entry is the answer, not the refusal.
            left = _resolve_replays(session, village_id, requests, results, only=pending)
            if len(left) == len(pending):
                raise
            pending = left
            continue
        except BaseException:
            savepoint.rollback()
            raise
        lock_village(session, village_id)
        # Someone may have committed the same key while we planned: theirs wins, ours is undone.
        raced = _resolve_replays(session, village_id, [requests[i] for i in pending], {})
        if len(raced) != len(pending):
            savepoint.rollback()
            pending = _resolve_replays(session, village_id, requests, results, only=pending)
            continue
        if recheck is not None:
            try:
                recheck()
            except BaseException:
                savepoint.rollback()
                raise
        ids = _append(session, village_id, drafts)
        savepoint.commit()
        by_key = {d.fields["idem_key"]: i for d, i in zip(drafts, ids, strict=True)}
        for i in pending:
            results[i] = by_key.get(requests[i].idem_key)  # None: planned to nothing (empty lot)
        pending = []
    else:
        raise ConflictError("系统繁忙，请稍后重试", reason="contention")
    return [results[i] for i in range(len(requests))]


def _resolve_replays(session, village_id, requests, results, only=None) -> list[int]:
    """Fill `results` for requests whose key exists; return the indexes still to post."""
    indexes = only if only is not None else range(len(requests))
    keys = {requests[i].idem_key for i in indexes}
    found = {}
    for chunk in _chunks(sorted(keys), _in_chunk(session)):
        found.update(
            {
                k: (i, h)
                for k, i, h in session.execute(
                    select(JournalEntry.idem_key, JournalEntry.id, JournalEntry.request_hash).where(
                        JournalEntry.village_id == village_id,
                        in_values(session, JournalEntry.idem_key, chunk),
                    )
                )
            }
        )
    pending = []
    for i in indexes:
        req = requests[i]
        if req.idem_key in found:
            entry_id, request_hash = found[req.idem_key]
            if request_hash != req.request_hash:
                raise DuplicateRequestError(idem_key=req.idem_key)
            results[i] = entry_id
        else:
            pending.append(i)
    return pending


def _replay(entry: JournalEntry, req: _Req) -> JournalEntry:
    if entry.request_hash != req.request_hash:
        raise DuplicateRequestError(idem_key=req.idem_key)
    return entry


def _apply(session: Session, village_id: int, drafts: list[_Draft]) -> None:
    """Apply subject postings to cached balances, in account order (no deadlock cycles).

    The WHERE clause is the guarantee: a lot never goes below zero and an owed account never
    above it, whatever Python planned from a balance another transaction has since changed.
    """
    deltas: dict[int, int] = defaultdict(int)
    for d in drafts:
        for account_id, amount in d.postings:
            deltas[account_id] += amount
    if bulk_postgresql(session):
        _apply_set_based(session, village_id, deltas)
        return
    kinds = {}
    for chunk in _chunks(sorted(deltas), 500):
        kinds.update(_account_kinds(session, chunk))
    for bound, stmt in _BALANCE_UPDATES:
        rows = [
            {"v": village_id, "acc": a, "d": deltas[a]}
            for a in sorted(deltas)
            if deltas[a] and kinds[a] == bound
        ]
        if not rows:
            continue
        if session.connection().execute(stmt, rows).rowcount != len(rows):
            raise _Contention()


# The conditional balance updates, built once (a close or an event batch runs them per batch).
_BALANCE_UPDATES = tuple(
    (
        bound,
        update(Account)
        # the village too: one shard's row on Citus (decision 0018)
        .where(Account.village_id == bindparam("v"), Account.id == bindparam("acc"), cond)
        .values(balance=Account.balance + bindparam("d")),
    )
    for bound, cond in (
        (AccountKind.LOT, Account.balance + bindparam("d") >= 0),
        (AccountKind.OWED, Account.balance + bindparam("d") <= 0),
    )
)


# One UPDATE for a batch's balances (the deltas joined by account id), with the same condition
# per kind as `_BALANCE_UPDATES`.
_PG_BALANCE_UPDATE = text(
    """
    UPDATE accounts SET balance = accounts.balance + d.delta
    FROM unnest(CAST(:ids AS INTEGER[]), CAST(:deltas AS INTEGER[])) AS d(id, delta)
    WHERE accounts.village_id = :v AND accounts.id = d.id
      AND CASE WHEN accounts.kind = 'lot' THEN accounts.balance + d.delta >= 0
               ELSE accounts.balance + d.delta <= 0 END
    """
)


def _apply_set_based(session: Session, village_id: int, deltas: dict[int, int]) -> None:
    """`_apply` on one PostgreSQL server: lock the lots and owed accounts touched, in id order
    (FOR NO KEY UPDATE, what the UPDATE itself takes: no deadlock cycle between two batches),
    then one conditional UPDATE; fewer rows updated than locked means a balance moved."""
    changed = sorted(a for a, d in deltas.items() if d)
    if not changed:
        return
    locked = (
        session.execute(
            select(Account.id)
            .where(
                Account.village_id == village_id,
                in_values(session, Account.id, changed),
                Account.kind.in_((AccountKind.LOT.value, AccountKind.OWED.value)),
            )
            .order_by(Account.id)
            .with_for_update(key_share=True)
        )
        .scalars()
        .all()
    )
    if not locked:
        return
    updated = (
        session.connection()
        .execute(
            _PG_BALANCE_UPDATE,
            {"v": village_id, "ids": locked, "deltas": [deltas[a] for a in locked]},
        )
        .rowcount
    )
    if updated != len(locked):
        raise _Contention()


def _append(session: Session, village_id: int, drafts: list[_Draft]) -> list[int]:
    """Number, hash and insert the drafts after the chain head; the caller holds the lock."""
    if not drafts:
        return []
    seq, prev = chain_head(session, village_id)
    had_head = seq > 0
    rows = []
    for d in drafts:
        seq += 1
        fields = dict(d.fields, village_id=village_id, seq=seq, prev_hash=prev)
        fields["hash"] = prev = entry_hash(prev, fields, d.postings)
        rows.append(fields)
    conn = session.connection()
    # One INSERT .. RETURNING (seq, id) on PostgreSQL; elsewhere a plain executemany, then the
    # ids by (village_id, seq): our seqs are ours alone (we hold the chain lock and the pair is
    # UNIQUE). INSERT .. RETURNING in parameter order would make SQLite insert one row per
    # statement.
    inserted = insert_rows(session, JournalEntry.__table__, rows, returning="seq, id")
    if inserted is None:
        inserted = conn.execute(
            select(JournalEntry.seq, JournalEntry.id).where(
                JournalEntry.village_id == village_id,
                JournalEntry.seq.between(rows[0]["seq"], seq),
            )
        )
    by_seq = dict(inserted.all())
    ids = [by_seq[r["seq"]] for r in rows]
    postings = [
        {"entry_id": entry_id, "village_id": village_id, "account_id": a, "amount": amt}
        for entry_id, d in zip(ids, drafts, strict=True)
        for a, amt in d.postings
    ]
    if postings:
        insert_rows(session, Posting.__table__, postings)
    if had_head:
        conn.execute(
            update(ChainHead).where(ChainHead.village_id == village_id).values(seq=seq, hash=prev)
        )
    else:
        conn.execute(insert(ChainHead).values(village_id=village_id, seq=seq, hash=prev))
    return ids


def _draft(
    req, kind, subject, pkey, now, score_delta, memo, category, actor_id, postings, month=None
) -> _Draft:
    postings = [(a, amt) for a, amt in postings if amt]
    fields = {
        "kind": str(kind),
        "scheme_id": subject.scheme_id if subject else None,
        "household_id": subject.household_id if subject else None,
        "resident_id": subject.resident_id if subject else None,
        "period_key": pkey,
        "month": month or month_key(local_date(now)),
        "score_delta": score_delta,
        "category": category,
        "memo": memo or "",
        "actor_id": actor_id,
        "reverses_id": None,
        "rule_id": None,
        "claim_id": None,
        "idem_key": req.idem_key,
        "request_hash": req.request_hash,
        "created_at": now.astimezone(UTC),
    }
    return _Draft(fields, postings)


# ---------------------------------------------------------------------------------------------
# Planning helpers: which accounts, how much
# ---------------------------------------------------------------------------------------------


def _credit(
    session: Session, subject: Subject, points: int, now: datetime
) -> list[tuple[int, int]]:
    """Postings that give `points` to a subject: settle owed first, the rest to the current lot."""
    scheme = session.get(Scheme, subject.scheme_id)
    owed = _owed_accounts(session, [subject]).get(subject)
    postings = []
    if owed and owed[1] < 0:
        settle = min(points, -owed[1])
        postings.append((owed[0], settle))
        points -= settle
    if points:
        pkey = period_key(scheme.period_kind, local_date(now))
        lot = _ensure_lots(session, scheme, [subject], pkey)[subject]
        postings.append((lot, points))
    return postings


def _debit(
    session: Session, subject: Subject, points: int, *, allow_owed: bool, prefer=()
) -> list[tuple[int, int]]:
    """Postings that take `points` from a subject's open lots (preferred, then oldest first)."""
    lots = session.execute(
        select(Account.id, Account.balance)
        .where(
            _subject_filter(subject),
            Account.kind == AccountKind.LOT,
            Account.closed_at.is_(None),
            Account.balance > 0,
        )
        .order_by(Account.period_start, Account.id)
    ).all()
    lots.sort(key=lambda row: row.id not in prefer)  # stable: preferred lots first, then age
    postings, left = [], points
    for lot_id, balance in lots:
        take = min(balance, left)
        postings.append((lot_id, -take))
        left -= take
        if not left:
            break
    if left:
        if not allow_owed:
            raise InsufficientPointsError(
                f"积分余额不足：可用 {points - left} 分，需要 {points} 分",
                available=points - left,
                required=points,
            )
        owed_id = _ensure_owed(session, subject)
        postings.append((owed_id, -left))
    return postings


def _account_kinds(session: Session, account_ids) -> dict[int, AccountKind]:
    ids = sorted(set(account_ids))
    rows = session.execute(
        select(Account.id, Account.kind).where(in_values(session, Account.id, ids))
    ).all()
    return {i: AccountKind(k) for i, k in rows}


def _balances(session: Session, account_ids) -> dict[int, int]:
    rows = session.execute(
        select(Account.id, Account.balance).where(in_values(session, Account.id, account_ids))
    ).all()
    return {i: b for i, b in rows}


def _reversal_of(session: Session, entry_id: int) -> int | None:
    return session.execute(
        select(JournalEntry.id).where(JournalEntry.reverses_id == entry_id)
    ).scalar_one_or_none()


def _posting_pairs(entry: JournalEntry) -> list[tuple[int, int]]:
    return [(p.account_id, p.amount) for p in entry.postings]


def _find_entry(session: Session, village_id: int, idem_key: str) -> JournalEntry | None:
    return session.execute(
        select(JournalEntry).where(
            JournalEntry.village_id == village_id, JournalEntry.idem_key == idem_key
        )
    ).scalar_one_or_none()


def _subject_filter(subject: Subject):
    return and_(
        Account.scheme_id == subject.scheme_id,
        Account.household_id == subject.household_id
        if subject.household_id is not None
        else Account.household_id.is_(None),
        Account.resident_id == subject.resident_id
        if subject.resident_id is not None
        else Account.resident_id.is_(None),
    )


def _ensure_accounts(session: Session, village_id: int, rows: list[dict]) -> dict[str, int]:
    """Create missing accounts by key (concurrency-safe), return key -> id for all of them."""
    keys = [r["key"] for r in rows]
    ids: dict[str, int] = {}
    for chunk in _chunks(keys, _in_chunk(session)):
        ids.update(_account_ids(session, village_id, chunk))
    missing = [dict(r, village_id=village_id) for r in rows if r["key"] not in ids]
    if missing:
        dialect = session.get_bind().dialect.name
        ins = (postgresql if dialect == "postgresql" else sqlite).insert(Account)
        session.connection().execute(
            ins.on_conflict_do_nothing(index_elements=["village_id", "key"]), missing
        )
        for chunk in _chunks([r["key"] for r in missing], _in_chunk(session)):
            ids.update(_account_ids(session, village_id, chunk))
    return ids


def _account_ids(session, village_id, keys) -> dict[str, int]:
    return dict(
        session.execute(
            select(Account.key, Account.id).where(
                Account.village_id == village_id, in_values(session, Account.key, keys)
            )
        ).all()
    )


def _ensure_lots(session, scheme: Scheme, subjects: list[Subject], pkey: str) -> dict[Subject, int]:
    start = period_start(scheme.period_kind, pkey)
    rows = {
        s: {
            "key": f"lot:{s.scheme_id}:{s.tag}:{pkey}",
            "kind": AccountKind.LOT.value,
            "scheme_id": s.scheme_id,
            "household_id": s.household_id,
            "resident_id": s.resident_id,
            "period_key": pkey,
            "period_start": start,
            "balance": 0,
        }
        for s in subjects
    }
    ids = _ensure_accounts(session, scheme.village_id, list(rows.values()))
    lots = {s: ids[r["key"]] for s, r in rows.items()}
    # A closed lot is ignored by spending, balances and closes: points credited to it would be
    # stuck. Only a clock set past a period's close can get here; refuse rather than lose them.
    closed = session.execute(
        select(func.count())
        .select_from(Account)
        .where(in_values(session, Account.id, list(lots.values())), Account.closed_at.is_not(None))
    ).scalar_one()
    if closed:
        raise PeriodClosedError(f"{pkey} 期已结算关闭，不能再记入该期积分", period=pkey)
    return lots


def _owed_accounts(session, subjects: list[Subject]) -> dict[Subject, tuple[int, int]]:
    """Return existing owed accounts as subject -> (account id, balance)."""
    if not subjects:
        return {}
    village_id = subjects[0].village_id
    by_key = {f"owed:{s.scheme_id}:{s.tag}": s for s in subjects}
    found = {}
    for chunk in _chunks(list(by_key), _in_chunk(session)):
        found.update(
            {
                k: (i, b)
                for k, i, b in session.execute(
                    select(Account.key, Account.id, Account.balance).where(
                        Account.village_id == village_id, in_values(session, Account.key, chunk)
                    )
                )
            }
        )
    return {by_key[k]: v for k, v in found.items()}


def _ensure_owed(session, subject: Subject) -> int:
    key = f"owed:{subject.scheme_id}:{subject.tag}"
    row = {
        "key": key,
        "kind": AccountKind.OWED.value,
        "scheme_id": subject.scheme_id,
        "household_id": subject.household_id,
        "resident_id": subject.resident_id,
        "balance": 0,
    }
    return _ensure_accounts(session, subject.village_id, [row])[key]


def _system_account(session: Session, village_id: int, kind: AccountKind) -> int:
    key = f"sys:{kind.value}"
    return _ensure_accounts(session, village_id, [{"key": key, "kind": kind.value}])[key]


def in_values(session: Session, column, values):
    """`column IN values`; on PostgreSQL `column = ANY(:array)`, one parameter.

    An IN list of n parameters is a new statement for each n, costly for psycopg to parse; and
    once PostgreSQL caches a generic plan for it, it rebuilds the array for every row scanned
    (measured: 180 ms instead of 2 ms for 500 keys against 10,000 entries with stale stats).
    """
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        # TEXT[], not VARCHAR(n)[]: a generic plan would cast the array for every row scanned.
        item = Text() if isinstance(column.type, String) else column.type
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(item)))
    # One expanding parameter: `in_(list)` would coerce each of up to 500 values on building.
    return column.in_(bindparam(None, values, expanding=True, type_=column.type))


def _require_positive(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise ValidationError("积分必须是正整数", errors={"points": ["必须是大于 0 的整数"]})


@lru_cache(maxsize=256)
def _utc_text(v: datetime) -> str:
    """The canonical text of an aware datetime (cached: a batch's entries share one `now`)."""
    return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _in_chunk(session: Session) -> int:
    """Keys per lookup: one array parameter on PostgreSQL takes a whole batch (one round trip
    where the server is busy is what costs); SQLite binds each key on its own."""
    return 5000 if session.get_bind().dialect.name == "postgresql" else 500


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]
