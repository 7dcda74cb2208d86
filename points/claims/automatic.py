"""Automatic (state-based) rules: "当月无违规 +N", "连续 3 个月无违规", "本季度参加活动满 K 次".

The scheduler's `rules_auto` job evaluates each automatic rule of each scheme once per ended
period — every one since the rule took effect, so after downtime the missed periods are caught
up oldest first: one work item per (scheme, rule code, period), guarded by its `cycle_runs` key like every
job (docs/decisions/0004), so two reconcilers or a restart never evaluate it twice. The item
looks at every subject of the scheme once: when the condition holds over the rule's window, the
subject gets a claim (channel `automatic`, recorded by nobody) that goes through review and 公示
exactly like a recorded one, or posts at once when the rule has 0 notice days and no review.

Conditions count *posted*, unreversed claims by the date the act occurred, of the categories or
rule codes the rule watches. A period is evaluated once the scheme's notice days and
`REVIEW_GRACE_DAYS` more have passed after its end, so the acts of its last days have been
reviewed and posted by then; a deduction still unsettled at evaluation does not count, and the
automatic award's own 公示 is where anyone can object to it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from points.catalog import rule_of
from points.catalog.conditions import condition_met, condition_window, describe_condition, watches
from points.catalog.rules import (
    AutoPeriod,
    Review,
)
from points.claims.workflow import notice_over, post_claim
from points.cycles.jobs import Job, WorkItem, register_job
from points.models import CatalogRule, CatalogVersion, CycleRun, Household, Resident, Scheme
from points.models.catalog import CatalogStatus
from points.models.claims import Channel, Claim, ClaimStatus
from points.models.ledger import JournalEntry
from points.periods import local_date, next_period_start, period_key, previous_period_key

JOB = "rules_auto"
# A period is evaluated this many days after its notice days have also run out past its end, so
# that deductions recorded in its last days have been reviewed and posted (or rejected) first.
REVIEW_GRACE_DAYS = 7


def last_ended_period(kind: AutoPeriod | str, now: datetime) -> str:
    """Return the key of the most recent month, quarter or year that ended before `now`."""
    return previous_period_key(str(kind), period_key(str(kind), local_date(now)))


def _due(session: Session, now: datetime) -> list[WorkItem]:
    """Every (scheme, automatic rule, ended period) not yet evaluated. A constant number of
    statements however many villages: runs, schemes, versions in force and automatic rules."""
    done = {
        (v, k)
        for v, k in session.execute(
            select(CycleRun.village_id, CycleRun.key).where(CycleRun.kind == JOB)
        )
    }
    versions: dict[int, list] = defaultdict(list)
    for version in session.execute(
        select(
            CatalogVersion.id,
            CatalogVersion.scheme_id,
            CatalogVersion.effective_from,
            CatalogVersion.effective_to,
        ).where(CatalogVersion.status != CatalogStatus.DRAFT)
    ):
        versions[version.scheme_id].append(version)
    auto_rules: dict[int, list[CatalogRule]] = defaultdict(list)
    for row in session.execute(select(CatalogRule).where(CatalogRule.auto.is_not(None))).scalars():
        auto_rules[row.version_id].append(row)
    items = []
    for scheme in session.execute(select(Scheme).order_by(Scheme.id)).scalars():
        settled = now - timedelta(days=scheme.notice_days + REVIEW_GRACE_DAYS)
        started = [v.effective_from for v in versions[scheme.id] if v.effective_from is not None]
        if not started:
            continue
        first_day = min(started)
        for kind in AutoPeriod:
            # Every ended period since the scheme's first catalog took effect, oldest first: after
            # downtime the missed periods are caught up, each once (its own cycle_runs key).
            keys = []
            key = last_ended_period(kind, settled)
            while next_period_start(str(kind), key) > first_day:
                keys.append(key)
                key = previous_period_key(str(kind), key)
            for key in reversed(keys):
                items += _items_for(scheme, kind, key, versions, auto_rules, done)
    return items


def _items_for(scheme, kind, key, versions, auto_rules, done) -> list[WorkItem]:
    """The work items of one scheme's automatic rules of `kind` for one ended period."""
    last_day = next_period_start(str(kind), key) - timedelta(days=1)
    # The rules in force on the period's last day decide whether it earns anything (as
    # catalog.adopted_version(on=…) picks it: the latest effective version). A period that
    # ended before a rule was adopted is never back-filled.
    in_force = [
        v
        for v in versions[scheme.id]
        if v.effective_from is not None
        and v.effective_from <= last_day
        and (v.effective_to is None or v.effective_to > last_day)
    ]
    if not in_force:
        return []
    version = max(in_force, key=lambda v: v.effective_from)
    items = []
    for row in sorted(auto_rules[version.id], key=lambda r: r.id):
        if row.auto != kind:
            continue
        item_key = f"{scheme.code}:{row.code}:{key}"
        if (scheme.village_id, item_key) in done:
            continue
        params = {"scheme_id": scheme.id, "rule_id": row.id, "period": key}
        label = f"{scheme.name} {row.name} {key}"
        items.append(WorkItem(JOB, scheme.village_id, item_key, params, label))
    return items


def _subjects(session: Session, scheme: Scheme) -> list[tuple[int, int | None]]:
    """Every (household, resident) the scheme scores: active households, or party members."""
    if scheme.subject_kind == "resident":
        q = (
            select(Resident.household_id, Resident.id)
            .join(
                Household,
                and_(
                    Household.id == Resident.household_id,
                    Household.village_id == Resident.village_id,
                ),
            )
            .where(
                Resident.village_id == scheme.village_id,
                Resident.is_party_member.is_(True),
                Resident.active.is_(True),
                Household.active.is_(True),
            )
            .order_by(Resident.id)
        )
        return [(h, r) for h, r in session.execute(q)]
    q = select(Household.id).where(
        Household.village_id == scheme.village_id, Household.active.is_(True)
    )
    return [(h, None) for h in session.execute(q.order_by(Household.id)).scalars()]


def _counts(session: Session, scheme: Scheme, rule, start: date, end: date) -> dict:
    """Watched posted, unreversed claims per subject in [start, end): (deductions, awards)."""
    reversal = aliased(JournalEntry)
    subject = Claim.resident_id if scheme.subject_kind == "resident" else Claim.household_id
    rows = session.execute(
        select(subject, CatalogRule.code, CatalogRule.category, Claim.points)
        .join(
            CatalogRule,
            and_(CatalogRule.id == Claim.rule_id, CatalogRule.village_id == Claim.village_id),
        )
        .where(
            Claim.scheme_id == scheme.id,
            Claim.status == ClaimStatus.POSTED,
            Claim.occurred_on >= start,
            Claim.occurred_on < end,
            ~select(reversal.id)
            .where(reversal.reverses_id == Claim.entry_id, reversal.village_id == Claim.village_id)
            .exists(),
        )
    ).all()
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for subject_id, code, category, points in rows:
        if code != rule.code and watches(rule, code=code, category=category):
            out[subject_id][0 if points < 0 else 1] += 1
    return out


def evaluate(session: Session, *, scheme: Scheme, row: CatalogRule, period: str, now: datetime):
    """Give each subject meeting an automatic rule's condition over `period` its claim.

    Called once per (scheme, rule, period) by the scheduler's job; returns the claims created.
    """
    rule = rule_of(row)
    end = next_period_start(str(rule.auto), period)
    start, end = condition_window(rule, end)
    counts = _counts(session, scheme, rule, start, end)
    needs_review = rule.review == Review.always or (
        rule.review == Review.threshold and rule.points >= (rule.review_threshold or 0)
    )
    days = scheme.notice_days if rule.notice_days is None else rule.notice_days
    condition = describe_condition(rule)
    made = []
    for household_id, resident_id in _subjects(session, scheme):
        deductions, awards = counts.get(resident_id or household_id, (0, 0))
        if not condition_met(rule, deductions=deductions, awards=awards):
            continue
        claim = Claim(
            village_id=scheme.village_id,
            scheme_id=scheme.id,
            household_id=household_id,
            resident_id=resident_id,
            rule_id=row.id,
            channel=Channel.AUTOMATIC,
            quantity=1,
            requested=rule.points,
            points=rule.points,
            rule_note=f"{period}：{condition}",
            description=f"{period} 自动评定",
            occurred_on=end - timedelta(days=1),
            status=ClaimStatus.PENDING_REVIEW if needs_review else ClaimStatus.IN_NOTICE,
            recorded_by=None,
            created_at=now,
            notice_until=None if needs_review else now + timedelta(days=days),
        )
        session.add(claim)
        made.append(claim)
    session.flush()
    for claim in made:
        if notice_over(claim, now):
            post_claim(session, claim_id=claim.id, now=now)
    return made


def _run(session: Session, item: WorkItem, now: datetime) -> dict:
    scheme = session.get(Scheme, item.params["scheme_id"])
    row = session.get(CatalogRule, item.params["rule_id"])
    made = evaluate(session, scheme=scheme, row=row, period=item.params["period"], now=now)
    return {"claims": len(made), "points": sum(c.points for c in made)}


# After posting claims whose notice ended (10), so this period's deductions are counted.
AUTO_JOB = Job(JOB, _due, _run, order=20)


def _register() -> None:
    register_job(AUTO_JOB)


_register()
