"""Dry run: what a draft catalog would have given the acts of the last months, before the vote.

The core (`replay`, `dry_run`) is pure: it replays past acts in date order through
`rules.decide` under the adopted rules and under the draft, recomputing every cap window from the
replay itself, and ranks the subjects both ways. `ledger_dry_run` feeds it the village's posted
entries that name a catalog rule.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from points.catalog.conditions import add_months, condition_met, condition_window, watches
from points.catalog.rules import (
    AUTO_MONTHS,
    AutoPeriod,
    Facts,
    Rule,
    Window,
    decide,
)
from points.catalog.versions import adopted_version, rules_of
from points.models import CatalogRule, CatalogVersion, Household, JournalEntry, Resident, Scheme
from points.models.catalog import SubjectKind
from points.models.ledger import EntryKind
from points.periods import LOCAL_TZ, local_date, month_key, period_key

DRY_RUN_REASON = "积分标准试算"


@dataclass(frozen=True)
class PastAct:
    """One act already posted: whose, under which rule code, how many units, on which date.

    `points_per_unit` is what the recorder chose under a range rule (None for a fixed rule); under
    a rule whose range changed it is kept within the new range.
    """

    subject_id: int
    rule_code: str
    on: date
    quantity: int = 1
    points_per_unit: int | None = None
    subject_kind: str = "household"


@dataclass(frozen=True)
class DryRunRow:
    """One subject's period score and rank (1 = highest; ties share a rank) both ways."""

    subject_id: int
    old_score: int
    new_score: int
    old_rank: int
    new_rank: int

    @property
    def change(self) -> int:
        return self.new_score - self.old_score


@dataclass(frozen=True)
class DryRun:
    """Every subject's scores and ranks; acts whose rule code one catalog lacks score 0 there."""

    rows: tuple[DryRunRow, ...]
    acts: int
    changed_acts: int
    missing_old: dict[str, int] = field(default_factory=dict)  # rule code -> acts
    missing_new: dict[str, int] = field(default_factory=dict)

    @property
    def changed_rows(self) -> tuple[DryRunRow, ...]:
        return tuple(r for r in self.rows if r.change or r.old_rank != r.new_rank)


def _window_key(window: Window, on: date, period_kind: str) -> str:
    if window is Window.day:
        return on.isoformat()
    if window is Window.month:
        return month_key(on)
    if window is Window.year:
        return f"{on.year:04d}"
    return period_key(period_kind, on)


def _facts(rule: Rule, act: PastAct, used: dict[Window, int], ever: int, repeats: int) -> Facts:
    # A dry run weighs values, not the process: whoever recorded the act was allowed to then, and
    # its reason and evidence were accepted. Only the new values, units and caps matter.
    role = "admin" if "admin" in rule.recorder_roles else min(rule.recorder_roles, default="admin")
    proposed = None
    if rule.points is None:
        wanted = act.points_per_unit if act.points_per_unit is not None else rule.min_points
        proposed = min(max(wanted, rule.min_points), rule.max_points)
    return Facts(
        subject_kind=act.subject_kind,
        recorder_role=role,
        quantity=act.quantity,
        proposed_points=proposed,
        has_evidence=True,
        reason=DRY_RUN_REASON,
        used=used,
        occurred_on=act.on,
        ever=ever,
        repeats=repeats,
    )


def replay(rules: Sequence[Rule], acts: Sequence[PastAct], *, period_kind: str) -> list[int | None]:
    """Return each act's signed points under `rules`, applying caps in date order.

    Acts are taken by date (ties in the given order); None marks an act whose rule code the
    catalog lacks. A refused act (cap reached, once-only used, rule no longer for this subject)
    scores 0; repeats escalate and campaigns multiply as they would have. An act under a rule
    that is automatic in `rules` scores 0 here: `auto_awards` re-evaluates such rules.
    """
    by_code = {r.code: r for r in rules}
    used: defaultdict[tuple, int] = defaultdict(int)
    counted: defaultdict[tuple, int] = defaultdict(int)  # claims per subject, code (and window)
    out: list[int | None] = [None] * len(acts)
    for i in sorted(range(len(acts)), key=lambda i: acts[i].on):
        act = acts[i]
        rule = by_code.get(act.rule_code)
        if rule is None:
            continue
        if rule.auto is not None:
            out[i] = 0
            continue
        keys = {
            w: (act.subject_id, rule.code, w, _window_key(w, act.on, period_kind)) for w in Window
        }
        ever_key = (act.subject_id, rule.code)
        repeat_key = keys.get(Window(rule.repeat_window)) if rule.repeat_window else None
        facts = _facts(
            rule,
            act,
            {w: used[k] for w, k in keys.items()},
            counted[ever_key],
            counted[repeat_key] if repeat_key else 0,
        )
        decision = decide(rule, facts)
        points = decision.points if decision.ok else 0
        out[i] = points
        for key in keys.values():
            used[key] += abs(points)
        if decision.ok:
            counted[ever_key] += 1
            if repeat_key:
                counted[repeat_key] += 1
    return out


def auto_awards(
    rules: Sequence[Rule],
    acts: Sequence[PastAct],
    points: Sequence[int | None],
    *,
    subjects: Iterable[int],
    start: date,
    end: date,
) -> dict[int, int]:
    """Return what each subject's automatic rules give over the whole periods in [start, end).

    Conditions look at the replayed acts (`points` as `replay` returned them), so a stricter
    draft that turns an act into a deduction also costs the 当月无违规 award.
    """
    by_code = {r.code: r for r in rules}
    out: dict[int, int] = dict.fromkeys(subjects, 0)
    for rule in (r for r in rules if r.auto is not None):
        months = AUTO_MONTHS[AutoPeriod(rule.auto)]
        # The first whole period on or after `start`: quarters begin in months 1, 4, 7 and 10.
        first = add_months(start, 0 if start.day == 1 else 1)
        while (first.month - 1) % months:
            first = add_months(first, 1)
        period_end = add_months(first, months)
        while period_end <= end:
            lo, hi = condition_window(rule, period_end)
            tally: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
            for act, p in zip(acts, points, strict=True):
                if not p or act.rule_code == rule.code or not lo <= act.on < hi:
                    continue
                watched = by_code.get(act.rule_code)
                if watches(rule, code=act.rule_code, category=watched.category if watched else ""):
                    tally[act.subject_id][0 if p < 0 else 1] += 1
            for subject in out:
                deductions, awards = tally.get(subject, (0, 0))
                if condition_met(rule, deductions=deductions, awards=awards):
                    out[subject] += rule.points
            period_end = add_months(period_end, months)
    return out


def _ranks(scores: dict[int, int]) -> dict[int, int]:
    # Competition ranking (1, 2, 2, 4): a tie never pushes anyone else up.
    ordered = sorted(scores.values(), reverse=True)
    first = {}
    for n, score in enumerate(ordered, start=1):
        first.setdefault(score, n)
    return {subject: first[score] for subject, score in scores.items()}


def dry_run(
    *,
    old_rules: Sequence[Rule],
    new_rules: Sequence[Rule],
    acts: Sequence[PastAct],
    period_kind: str,
    base_score: int = 0,
    subjects: Iterable[int] = (),
    auto_from: date | None = None,
    auto_to: date | None = None,
) -> DryRun:
    """Score every subject under the old and the new rules; `subjects` adds those with no acts.

    Scores are base score + the replayed points, plus (given `auto_from` and `auto_to`) what the
    automatic rules give over the whole periods between those dates; rows come by new rank,
    then subject id.
    """
    old_points = replay(old_rules, acts, period_kind=period_kind)
    new_points = replay(new_rules, acts, period_kind=period_kind)
    old = dict.fromkeys(subjects, base_score) | {a.subject_id: base_score for a in acts}
    new = dict(old)
    for act, before, after in zip(acts, old_points, new_points, strict=True):
        old[act.subject_id] += before or 0
        new[act.subject_id] += after or 0
    if auto_from is not None and auto_to is not None:
        for scores, rules, points in ((old, old_rules, old_points), (new, new_rules, new_points)):
            extra = auto_awards(
                rules, acts, points, subjects=list(scores), start=auto_from, end=auto_to
            )
            for subject, value in extra.items():
                scores[subject] += value
    old_rank, new_rank = _ranks(old), _ranks(new)
    rows = sorted(
        (DryRunRow(s, old[s], new[s], old_rank[s], new_rank[s]) for s in old),
        key=lambda r: (r.new_rank, r.subject_id),
    )
    pairs = list(zip(acts, old_points, new_points, strict=True))
    return DryRun(
        rows=tuple(rows),
        acts=len(acts),
        changed_acts=sum((before or 0) != (after or 0) for _, before, after in pairs),
        missing_old=dict(Counter(act.rule_code for act, before, _ in pairs if before is None)),
        missing_new=dict(Counter(act.rule_code for act, _, after in pairs if after is None)),
    )


# ---------------------------------------------------------------------------------------------
# Fed from the ledger
# ---------------------------------------------------------------------------------------------


def ledger_acts(session: Session, *, scheme: Scheme, since: date) -> list[PastAct]:
    """Return the scheme's posted, unreversed awards and deductions since `since` that name a rule.

    Entries name their rule through `JournalEntry.rule_id` (and their units through `quantity`,
    1 when absent); until the ledger records the rule, there are no such acts.
    """
    # Looked up rather than imported: the ledger gains the column with the claims work.
    rule_id = getattr(JournalEntry, "rule_id", None)
    if rule_id is None:
        return []
    quantity = getattr(JournalEntry, "quantity", None)
    reversed_ids = select(JournalEntry.reverses_id).where(JournalEntry.reverses_id.is_not(None))
    rows = session.execute(
        select(
            JournalEntry.household_id,
            JournalEntry.resident_id,
            JournalEntry.created_at,
            JournalEntry.score_delta,
            CatalogRule.code,
            CatalogRule.points,
            *([quantity] if quantity is not None else []),
        )
        .join(CatalogRule, CatalogRule.id == rule_id)
        .where(
            JournalEntry.scheme_id == scheme.id,
            JournalEntry.kind.in_((EntryKind.AWARD, EntryKind.DEDUCTION)),
            JournalEntry.id.not_in(reversed_ids),
            JournalEntry.created_at >= datetime.combine(since, time(), tzinfo=LOCAL_TZ),
        )
        .order_by(JournalEntry.seq)
    ).all()
    kinds = _subject_kinds(session, scheme)
    acts = []
    for household_id, resident_id, created_at, delta, code, fixed, *rest in rows:
        qty = (rest[0] if rest else None) or 1
        subject_id = household_id if household_id is not None else resident_id
        acts.append(
            PastAct(
                subject_id=subject_id,
                rule_code=code,
                on=local_date(created_at),
                quantity=qty,
                points_per_unit=None if fixed is not None else abs(delta) // qty,
                subject_kind=kinds.get(subject_id, "household"),
            )
        )
    return acts


def _subject_kinds(session: Session, scheme: Scheme) -> dict[int, str]:
    """Return each resident's subject kind for a personal scheme (empty for households)."""
    if scheme.subject_kind == SubjectKind.HOUSEHOLD:
        return {}
    rows = session.execute(
        select(Resident.id, Resident.is_party_member).where(
            Resident.village_id == scheme.village_id, Resident.active
        )
    ).all()
    return {rid: "party_member" if party else "resident" for rid, party in rows}


def scheme_subjects(
    session: Session, *, scheme: Scheme, kinds: Iterable[str] = ("resident", "party_member")
) -> dict[int, str]:
    """Return the scheme's active subjects by id with a label: 户号 and head, or a name.

    For a personal scheme only residents of `kinds` count (the party track: party members).
    """
    if scheme.subject_kind == SubjectKind.HOUSEHOLD:
        rows = session.execute(
            select(Household.id, Household.number, Resident.name)
            .outerjoin(
                Resident,
                and_(Resident.id == Household.head_id, Resident.village_id == Household.village_id),
            )
            .where(Household.village_id == scheme.village_id, Household.active)
            .order_by(Household.number)
        ).all()
        return {hid: f"{number} {head or ''}".strip() for hid, number, head in rows}
    wanted = set(kinds)
    rows = session.execute(
        select(Resident.id, Resident.name, Resident.is_party_member)
        .where(Resident.village_id == scheme.village_id, Resident.active)
        .order_by(Resident.id)
    ).all()
    return {
        rid: name
        for rid, name, party in rows
        if ("party_member" if party else "resident") in wanted
    }


def ledger_dry_run(
    session: Session, *, version: CatalogVersion, months: int, now: datetime
) -> tuple[DryRun, dict[int, str]]:
    """Dry-run `version` against the adopted catalog on the last `months` months of the ledger.

    Returns the result and a label per subject. A score here is the base score plus the points
    of the whole window, which may span more than one scoring period.
    """
    scheme = session.get(Scheme, version.scheme_id)
    current = adopted_version(session, scheme=scheme)
    old_rules = rules_of(current) if current is not None else []
    new_rules = rules_of(version)
    since = local_date(now) - timedelta(days=31 * months)
    kinds = {k for r in (*old_rules, *new_rules) for k in r.subjects}
    labels = scheme_subjects(session, scheme=scheme, kinds=kinds)
    result = dry_run(
        old_rules=old_rules,
        new_rules=new_rules,
        acts=ledger_acts(session, scheme=scheme, since=since),
        period_kind=scheme.period_kind,
        base_score=scheme.base_score,
        subjects=labels,
        auto_from=since,
        auto_to=local_date(now),
    )
    return result, labels
