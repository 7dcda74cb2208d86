"""Random ledger histories checked step by step against a plain in-memory model.

Hypothesis drives awards, deductions, spends, reversals, replays of idempotency keys, period
closes and a clock that crosses quarter boundaries (in Beijing time). After every step the
balances, owed amounts, period and month scores, the chain head and every `verify` check must
agree with the model. Each example runs in a new village of one database: villages are
isolated, so the examples also reuse the same idempotency keys in different villages.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from points import ledger
from points.errors import (
    AlreadyReversedError,
    ConflictError,
    DuplicateRequestError,
    InsufficientPointsError,
)
from points.ledger.verify import verify
from points.models import Account, JournalEntry
from tests.factories import make_household, make_scheme, make_village

START = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 13:00 in Beijing, late in 2026-Q4
BEIJING = timedelta(hours=8)  # China keeps no daylight saving time
HOUSEHOLDS = 3
REASON = "录入错误"
_villages = itertools.count(1)


# ---------------------------------------------------------------------------------------------
# The reference model: plain Python, written from the documented semantics
# ---------------------------------------------------------------------------------------------


def local_day(now: datetime) -> date:
    return (now.astimezone(UTC) + BEIJING).date()


def quarter_of(now: datetime) -> str:
    d = local_day(now)
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def month_of(now: datetime) -> str:
    d = local_day(now)
    return f"{d.year}-{d.month:02d}"


def next_quarter_start_utc(now: datetime) -> datetime:
    d = local_day(now)
    q = (d.month - 1) // 3
    year, month = (d.year + 1, 1) if q == 3 else (d.year, 3 * q + 4)
    return datetime(year, month, 1, tzinfo=UTC) - BEIJING  # local midnight, in UTC


@dataclass
class Holder:
    """One household's position: lots by period key (some closed) and what it owes."""

    lots: dict[str, int] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    owed: int = 0

    def open_lots(self) -> list[str]:
        return sorted(p for p in self.lots if p not in self.closed)

    @property
    def available(self) -> int:
        return sum(self.lots[p] for p in self.open_lots())

    def credit(self, points: int, current: str) -> str | None:
        """Settle owed first, the rest to the current lot; return the lot credited, if any."""
        settle = min(points, -self.owed)
        self.owed += settle
        if points - settle:
            self.lots[current] = self.lots.get(current, 0) + points - settle
            return current
        return None

    def debit(self, points: int, *, allow_owed: bool, prefer: str | None = None) -> None:
        """Take from open lots, the preferred one first, then oldest first; rest to owed."""
        order = self.open_lots()
        if prefer in order:
            order.remove(prefer)
            order.insert(0, prefer)
        if not allow_owed and self.available < points:
            raise AssertionError("the model was asked to overspend")
        left = points
        for p in order:
            take = min(self.lots[p], left)
            self.lots[p] -= take
            left -= take
        self.owed -= left


@dataclass
class Entry:
    """What the model remembers of one entry the ledger wrote."""

    id: int
    kind: str
    household: int
    net: int  # what it did to the household's lots + owed
    period: str
    month: str
    score: int
    credited_lot: str | None = None
    reversal_key: str | None = None  # the key its reversal was posted under, once reversed
    reversed: bool = False


@dataclass
class Request:
    """A request the ledger accepted, kept so that it can be sent again."""

    kind: str
    key: str
    args: dict
    entry_id: int | None


# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Drives one village's ledger; `session_factory` is set on the class by the test."""

    session_factory = None

    def __init__(self):
        super().__init__()
        self.now = START
        self.code: str | None = None
        self.holders: dict[int, Holder] = {}
        self.scores: dict[tuple[int, str], int] = {}
        self.month_scores: dict[tuple[int, str], int] = {}
        self.touched: set[tuple[int, str]] = set()
        self.entries: list[Entry] = []
        self.requests: list[Request] = []
        self.keys = itertools.count(1)
        self.lot_ids: dict[tuple[int, str], int] = {}

    # -- plumbing ------------------------------------------------------------------------------

    def call(self, fn, **kw):
        """Run one ledger call in its own transaction, committed like a request.

        The transaction is committed even when the call raises a domain error: a refused
        request must have changed nothing, and committing is how we would see it if it had.
        """
        with self.session_factory() as s:
            try:
                entry = fn(s, **kw)
                result = None if entry is None else (entry.id, entry.seq, entry.idem_key)
            except ConflictError as exc:  # every refusal tested here is a 409
                s.commit()
                return exc
            s.commit()
            return result

    def op(self, kind: str, s, **args):
        common = dict(actor_id=None, now=self.now)
        if kind in ("award", "deduct", "spend"):
            fn = getattr(ledger, kind)
            return fn(
                s,
                scheme=self.scheme,
                subject_id=args["h"],
                points=args["p"],
                idem_key=args["key"],
                **common,
            )
        if kind == "batch":
            line = ledger.AwardLine(args["h"], args["p"], args["key"], memo=args["memo"])
            (entry_id,) = ledger.post_awards(s, scheme=self.scheme, lines=[line], **common)
            return s.get(JournalEntry, entry_id)
        if kind == "reverse":
            return ledger.reverse(
                s, entry_id=args["entry"], reason=args["reason"], idem_key=args["key"], **common
            )
        if kind == "expire":
            return ledger.expire_lot(s, account_id=args["lot"], now=self.now)
        raise AssertionError(kind)

    def send(self, kind: str, **args):
        return self.call(lambda s: self.op(kind, s, **args))

    def new_key(self) -> str:
        return f"k{next(self.keys)}"

    def record(self, kind, key, args, result, **entry):
        entry_id, seq, _ = result
        assert seq == len(self.entries) + 1, "seq must continue the village's chain gaplessly"
        self.entries.append(Entry(entry_id, kind, **entry))
        self.requests.append(Request(kind, key, args, entry_id))
        h, period, month, score = (entry[k] for k in ("household", "period", "month", "score"))
        self.scores[(h, period)] = self.scores.get((h, period), 0) + score
        self.month_scores[(h, month)] = self.month_scores.get((h, month), 0) + score
        self.touched |= {(h, period), (h, "month:" + month)}

    # -- setup ---------------------------------------------------------------------------------

    @initialize(
        base=st.integers(0, 100),
        opening=st.lists(st.integers(0, 50), min_size=HOUSEHOLDS, max_size=HOUSEHOLDS),
    )
    def new_village(self, base, opening):
        with self.session_factory() as s:
            village = make_village(s, code=f"st{next(_villages)}")
            self.scheme = make_scheme(s, village, base_score=base)
            self.households = [make_household(s, village, members=1).id for _ in range(HOUSEHOLDS)]
            self.code = village.code
            s.commit()
        self.base = base
        self.holders = {h: Holder() for h in self.households}
        self.touched = {(h, quarter_of(self.now)) for h in self.households}
        for i, p in enumerate(opening):
            if p:
                self.award(i, p)

    # -- writes --------------------------------------------------------------------------------

    @rule(data=st.data())
    def award_batch(self, data):
        """post_awards: several lines in one append, some for the same household."""
        picks = data.draw(
            st.lists(
                st.tuples(st.integers(0, HOUSEHOLDS - 1), st.integers(1, 30)),
                min_size=1,
                max_size=5,
            )
        )
        lines = [
            ledger.AwardLine(self.households[i], p, self.new_key(), memo=f"批量{n}")
            for n, (i, p) in enumerate(picks)
        ]
        with self.session_factory() as s:
            ids = ledger.post_awards(
                s, scheme=self.scheme, lines=lines, actor_id=None, now=self.now
            )
            seqs = [s.get(JournalEntry, i).seq for i in ids]
            s.commit()
        period = quarter_of(self.now)
        for line, entry_id, seq in zip(lines, ids, seqs, strict=True):
            holder = self.holders[line.subject_id]
            holder.lots.setdefault(period, 0)
            lot = holder.credit(line.points, period)
            args = dict(h=line.subject_id, p=line.points, key=line.idem_key, memo=line.memo)
            self.record(
                "batch",
                line.idem_key,
                args,
                (entry_id, seq, line.idem_key),
                household=line.subject_id,
                net=line.points,
                period=period,
                month=month_of(self.now),
                score=line.points,
                credited_lot=lot,
            )

    @rule(i=st.integers(0, HOUSEHOLDS - 1), p=st.integers(1, 40))
    def award(self, i, p):
        h, key = self.households[i], self.new_key()
        result = self.send("award", h=h, p=p, key=key)
        period = quarter_of(self.now)
        holder = self.holders[h]
        holder.lots.setdefault(period, 0)  # an award opens the current lot even if owed eats it
        lot = holder.credit(p, period)
        self.record(
            "award",
            key,
            dict(h=h, p=p, key=key),
            result,
            household=h,
            net=p,
            period=period,
            month=month_of(self.now),
            score=p,
            credited_lot=lot,
        )

    @rule(i=st.integers(0, HOUSEHOLDS - 1), p=st.integers(1, 40))
    def deduct(self, i, p):
        h, key = self.households[i], self.new_key()
        result = self.send("deduct", h=h, p=p, key=key)
        self.holders[h].debit(p, allow_owed=True)
        self.record(
            "deduct",
            key,
            dict(h=h, p=p, key=key),
            result,
            household=h,
            net=-p,
            period=quarter_of(self.now),
            month=month_of(self.now),
            score=-p,
        )

    @rule(i=st.integers(0, HOUSEHOLDS - 1), p=st.integers(1, 60))
    def spend(self, i, p):
        h, key = self.households[i], self.new_key()
        holder = self.holders[h]
        result = self.send("spend", h=h, p=p, key=key)
        if holder.available < p:
            assert isinstance(result, InsufficientPointsError), result
            assert result.code == "insufficient_points"
            assert result.details == {"available": holder.available, "required": p}
            return
        holder.debit(p, allow_owed=False)
        self.record(
            "spend",
            key,
            dict(h=h, p=p, key=key),
            result,
            household=h,
            net=-p,
            period=quarter_of(self.now),
            month=month_of(self.now),
            score=0,
        )

    @precondition(lambda self: self.entries)
    @rule(data=st.data(), default_key=st.booleans())
    def reverse(self, data, default_key):
        target = data.draw(st.sampled_from(self.entries))
        key = f"reverse:{target.id}" if default_key else self.new_key()
        args = dict(entry=target.id, reason=REASON, key=key)
        result = self.send("reverse", **args)
        if target.kind == "reverse":
            assert type(result) is ConflictError, result  # a correction is not corrected
            return
        if target.reversed:
            if key == target.reversal_key:  # the same request again: the first reversal
                assert result[0] == self.reversal_of(target).id, result
            else:
                assert isinstance(result, AlreadyReversedError), result
                assert result.code == "already_reversed"
            return
        holder, net = self.holders[target.household], -target.net
        lot = None
        if net > 0:
            lot = holder.credit(net, quarter_of(self.now))
        else:
            holder.debit(-net, allow_owed=True, prefer=target.credited_lot)
        target.reversed, target.reversal_key = True, key
        self.record(
            "reverse",
            key,
            args,
            result,
            household=target.household,
            net=net,
            period=target.period,
            month=target.month,
            score=-target.score,
            credited_lot=lot,
        )

    def reversal_of(self, target: Entry) -> Entry:
        i = next(i for i, r in enumerate(self.requests) if r.key == target.reversal_key)
        return next(e for e in self.entries if e.id == self.requests[i].entry_id)

    @precondition(lambda self: self.past_open_lots())
    @rule(data=st.data())
    def close_period(self, data):
        h, period = data.draw(st.sampled_from(self.past_open_lots()))
        lot_id = self.lot_id(h, period)
        result = self.send("expire", lot=lot_id)
        holder = self.holders[h]
        remainder = holder.lots[period]
        holder.closed.add(period)
        if remainder == 0:
            assert result is None, "closing an empty lot writes no entry"
            self.requests.append(Request("expire", "", dict(lot=lot_id), None))
            return
        assert result[2] == f"close:{lot_id}:{period}"
        holder.lots[period] = 0
        self.record(
            "expire",
            result[2],
            dict(lot=lot_id),
            result,
            household=h,
            net=-remainder,
            period=period,
            month=month_of(self.now),
            score=0,
        )

    def past_open_lots(self) -> list[tuple[int, str]]:
        current = quarter_of(self.now)
        return [
            (h, p) for h, holder in self.holders.items() for p in holder.open_lots() if p < current
        ]

    def lot_id(self, h: int, period: str) -> int:
        if (h, period) not in self.lot_ids:
            with self.session_factory() as s:
                self.lot_ids[(h, period)] = s.execute(
                    select(Account.id).where(
                        Account.scheme_id == self.scheme.id,
                        Account.household_id == h,
                        Account.kind == "lot",
                        Account.period_key == period,
                    )
                ).scalar_one()
        return self.lot_ids[(h, period)]

    # -- replays -------------------------------------------------------------------------------

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def replay_same_request(self, data):
        req = data.draw(st.sampled_from(self.requests))
        result = self.send(req.kind, **req.args)  # later, maybe in another period: no matter
        if req.entry_id is None:
            assert result is None
        else:
            assert not isinstance(result, Exception), result
            assert result[0] == req.entry_id, "a replay must return the first entry"

    @precondition(lambda self: any(r.entry_id for r in self.requests))
    @rule(data=st.data())
    def replay_key_with_other_payload(self, data):
        req = data.draw(st.sampled_from([r for r in self.requests if r.entry_id]))
        if req.kind in ("award", "batch", "deduct", "spend"):
            result = self.send(req.kind, **dict(req.args, p=req.args["p"] + 1))
        elif req.kind == "reverse":
            result = self.send("reverse", **dict(req.args, reason=REASON + "（重复提交）"))
        else:  # a close's key, reused by a client for an award
            result = self.send("award", h=self.households[0], p=1, key=req.key)
        assert isinstance(result, DuplicateRequestError), result
        assert result.code == "duplicate_request"
        assert result.details == {"idem_key": req.key}

    # -- the clock -----------------------------------------------------------------------------

    @rule(days=st.integers(0, 75), minutes=st.integers(0, 24 * 60))
    def time_passes(self, days, minutes):
        self.now += timedelta(days=days, minutes=minutes)

    @rule(seconds=st.sampled_from([-1, 0, 1, 3600]))
    def cross_quarter_boundary(self, seconds):
        """Jump to just around local midnight of the next quarter (16:00 UTC the day before)."""
        self.now = max(self.now, next_quarter_start_utc(self.now) + timedelta(seconds=seconds))

    # -- what a user would see -----------------------------------------------------------------

    @invariant()
    def ledger_agrees_with_model(self):
        if self.code is None:
            return
        self.check(self.touched | {(h, quarter_of(self.now)) for h in self.households})
        self.touched = set()

    def teardown(self):
        if self.code is not None:  # every period and month ever touched, once more
            everything = {(h, p) for h, p in self.scores} | {
                (h, "month:" + m) for h, m in self.month_scores
            }
            self.check(everything)

    def check(self, keys):
        with self.session_factory() as s:
            for h, holder in self.holders.items():
                bal = ledger.get_balance(s, scheme=self.scheme, subject_id=h)
                lots = tuple((p, holder.lots[p]) for p in holder.open_lots())
                assert (bal.available, bal.owed, bal.lots) == (holder.available, holder.owed, lots)
                assert bal.available >= 0 and bal.owed <= 0
            for h, key in sorted(keys):
                if key.startswith("month:"):
                    month = key.removeprefix("month:")
                    got = ledger.period_score(s, scheme=self.scheme, subject_id=h, month=month)
                    assert got == self.month_scores.get((h, month), 0), (h, month)
                else:
                    got = ledger.period_score(s, scheme=self.scheme, subject_id=h, period=key)
                    assert got == self.base + self.scores.get((h, key), 0), (h, key)
            report = verify(s, village_code=self.code)
            assert report.breaches == []
            assert report.entries == len(self.entries)
            seq, head = ledger.chain_head(s, self.scheme.village_id)
            assert (seq, head) == report.heads[self.code]
            assert seq == len(self.entries)
            s.rollback()


@pytest.mark.slow
def test_random_histories_agree_with_the_model(session_factory):
    machine = type("Machine", (LedgerMachine,), {"session_factory": session_factory})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_model_quarter_keys_follow_beijing_midnight():
    """The model's own clock arithmetic, pinned: 2026-12-31 16:00 UTC is 2027-01-01 in Beijing."""
    boundary = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert next_quarter_start_utc(START) == boundary
    assert quarter_of(boundary - timedelta(seconds=1)) == "2026-Q4"
    assert quarter_of(boundary) == "2027-Q1"
    assert month_of(boundary) == "2027-01"
