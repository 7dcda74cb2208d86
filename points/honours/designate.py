"""Drafting a year's honour lists from the ledger, and the scheduler's yearly job.

星级文明户: every active household of the household scheme gets the stars its average period
score of the year reaches (the scheme's thresholds). 评星定级: every active party member gets
the stars of the party score combined with the branch's 民主评议 (points.honours.rules). Yearly
表彰: the best households (最美家庭) and party members (优秀党员) are nominated from those
scores; 优秀群众 and 道德模范 come from the review group's nominations. A 一票否决 posted in
the year (any window) bars the subject from all of the year's honours.

A household scheme whose honour rules say `household_cadence: "period"` designates 星级文明户
per scoring period instead: each closed period gets its own list (`period` = its key), drafted
once its claims' 公示 has ended, with stars from that period's score and that period's vetoes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from points.boards import stars
from points.claims.veto import vetoed
from points.cycles.jobs import Job, WorkItem, register_job
from points.errors import ConflictError, ValidationError
from points.honours.rules import (
    PERIOD,
    STARS,
    average_score,
    honour_rules,
    household_cadence,
    party_stars,
    review_value,
)
from points.models import CycleRun, Household, JournalEntry, Period, Resident, Scheme, Village
from points.models.cycles import PeriodStatus
from points.models.honours import (
    HonourEntry,
    HonourKind,
    HonourList,
    HonourStatus,
    PartyReview,
)
from points.periods import (
    local_date,
    month_key,
    next_period_start,
    period_end_utc,
    period_label,
    period_start,
)

JOB = "honour_draft"
LIVE = (HonourStatus.DRAFT, HonourStatus.APPROVED, HonourStatus.PUBLISHED)
# The year's lists are drafted from this day of January: December's claims have passed 公示
# and the automatic rules (two weeks after a period) have run by then.
DRAFT_FROM_DAY = 20
AUTO_KINDS = (HonourKind.HOUSEHOLD_STARS, HonourKind.PARTY_STARS, HonourKind.AWARDS)


def check_year(year: int, now: datetime) -> int:
    """Return `year` if it is a plausible year that has ended at `now` (local time)."""
    if not isinstance(year, int) or year < 2000 or year > 9999:
        raise ValidationError("年份格式不对", errors={"year": ["格式不对"]})
    if year >= local_date(now).year:
        raise ValidationError("该年度尚未结束，不能评定", errors={"year": ["尚未结束"]})
    return year


def scheme_of(session: Session, village: Village, subject_kind: str) -> Scheme | None:
    """Return the village's first scheme scoring households or residents, if any."""
    return session.execute(
        select(Scheme)
        .where(Scheme.village_id == village.id, Scheme.subject_kind == subject_kind)
        .order_by(Scheme.id)
        .limit(1)
    ).scalar_one_or_none()


def _months(first: date, end: date) -> list[date]:
    """Return the first day of each month from `first` up to (not including) `end`."""
    out, day = [], first
    while day < end:
        out.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return out


def _span(scheme: Scheme, year: int, period: str) -> tuple[date, date]:
    """Return the [first, end) local dates of a year, or of a period of the scheme."""
    if period:
        return period_start(scheme.period_kind, period), next_period_start(
            scheme.period_kind, period
        )
    return date(year, 1, 1), date(year + 1, 1, 1)


def barred_in_year(session: Session, scheme: Scheme, year: int, period: str = "") -> dict[int, str]:
    """Return {subject: reason} for subjects with a 一票否决 in any month of the year (or of
    the scheme's period `period`)."""
    out: dict[int, str] = {}
    for month in _months(*_span(scheme, year, period)):
        for subject, reason in vetoed(session, scheme=scheme, on=month).items():
            out.setdefault(subject, reason)
    return out


def _year_totals(
    session: Session, scheme: Scheme, year: int, column, period: str = ""
) -> dict[int, int]:
    months = _months(*_span(scheme, year, period))
    rows = session.execute(
        select(column, func.sum(JournalEntry.score_delta))
        .where(
            JournalEntry.scheme_id == scheme.id,
            JournalEntry.month >= month_key(months[0]),
            JournalEntry.month <= month_key(months[-1]),
        )
        .group_by(column)
    ).all()
    return {k: int(v or 0) for k, v in rows if k is not None}


def household_scores(session: Session, village: Village, year: int, period: str = "") -> list[dict]:
    """Return each active household's average period score of the year (or its score of the
    household scheme's period `period`) and stars, best first; barred households carry the
    veto's reason and no stars."""
    scheme = scheme_of(session, village, "household")
    if scheme is None:
        return []
    totals = _year_totals(session, scheme, year, JournalEntry.household_id, period)
    barred = barred_in_year(session, scheme, year, period)
    homes = session.execute(
        select(Household.id, Household.head_id).where(
            Household.village_id == village.id, Household.active.is_(True)
        )
    ).all()
    out = []
    for hid, head_id in homes:
        if period:
            score = scheme.base_score + totals.get(hid, 0)
        else:
            score = average_score(scheme.base_score, totals.get(hid, 0), scheme.period_kind)
        n = 0 if hid in barred else stars(score, scheme.star_thresholds)
        out.append(
            dict(
                household_id=hid, resident_id=head_id, score=score, stars=n, vetoed=barred.get(hid)
            )
        )
    return sorted(out, key=lambda r: (-r["stars"], -r["score"], r["household_id"]))


def party_scores(session: Session, village: Village, year: int) -> tuple[list[dict], dict]:
    """Return each active party member's combined score and stars, best first, and the rules."""
    scheme = scheme_of(session, village, "resident")
    if scheme is None:
        return [], honour_rules(None)
    rules = honour_rules(scheme.honour_rules)
    totals = _year_totals(session, scheme, year, JournalEntry.resident_id)
    barred = barred_in_year(session, scheme, year)
    reviews = {
        r.resident_id: r
        for r in session.execute(
            select(PartyReview).where(
                PartyReview.village_id == village.id, PartyReview.year == year
            )
        ).scalars()
    }
    members = session.execute(
        select(Resident)
        .where(
            Resident.village_id == village.id,
            Resident.is_party_member.is_(True),
            Resident.active.is_(True),
        )
        .order_by(Resident.id)
    ).scalars()
    out = []
    for person in members:
        party = average_score(scheme.base_score, totals.get(person.id, 0), scheme.period_kind)
        review = reviews.get(person.id)
        grade = review.grade if review else None
        value = review_value(rules, review.score, grade) if review else None
        combined, n = party_stars(rules, scheme.star_thresholds, party, value, grade)
        if person.id in barred:
            n = 0
        out.append(
            dict(
                household_id=person.household_id,
                resident_id=person.id,
                party_score=party,
                review_score=value,
                grade=grade,
                score=combined,
                stars=n,
                vetoed=barred.get(person.id),
            )
        )
    return sorted(out, key=lambda r: (-r["stars"], -r["score"], r["resident_id"])), rules


def _rows(session: Session, village: Village, kind: str, year: int, period: str = "") -> list[dict]:
    """The entries a list of `kind` starts with (the 道德模范 roll starts empty)."""
    if kind == HonourKind.HOUSEHOLD_STARS and period:
        return [
            dict(
                title=STARS,
                household_id=r["household_id"],
                resident_id=None,
                score=r["score"],
                stars=r["stars"],
                text=f"{period_label(period)}{r['stars']}星级文明户（本期得分 {r['score']} 分）",
            )
            for r in household_scores(session, village, year, period)
            if r["stars"]
        ]
    if kind == HonourKind.HOUSEHOLD_STARS:
        return [
            dict(
                title=STARS,
                household_id=r["household_id"],
                resident_id=None,
                score=r["score"],
                stars=r["stars"],
                text=f"{year}年度{r['stars']}星级文明户（期均得分 {r['score']} 分）",
            )
            for r in household_scores(session, village, year)
            if r["stars"]
        ]
    if kind == HonourKind.PARTY_STARS:
        members, _rules = party_scores(session, village, year)
        return [
            dict(
                title=STARS,
                household_id=r["household_id"],
                resident_id=r["resident_id"],
                score=r["score"],
                review_score=r["review_score"],
                stars=r["stars"],
                text=f"{year}年度{r['stars']}星党员（党员积分 {r['party_score']}，民主评议 "
                + (f"{r['review_score']}" if r["review_score"] is not None else "未录入")
                + "）",
            )
            for r in members
            if r["stars"]
        ]
    if kind == HonourKind.AWARDS:
        scheme = scheme_of(session, village, "household") or scheme_of(session, village, "resident")
        rules = honour_rules(scheme.honour_rules if scheme else None)
        top, least = int(rules["award_top_n"]), int(rules["award_min_stars"])
        homes = [r for r in household_scores(session, village, year) if r["stars"] >= least]
        members = [r for r in party_scores(session, village, year)[0] if r["stars"] >= least]
        return [
            dict(
                title="最美家庭",
                household_id=r["household_id"],
                resident_id=None,
                score=r["score"],
                stars=r["stars"],
                text=f"{year}年度积分前列，{r['stars']}星级文明户",
            )
            for r in homes[:top]
        ] + [
            dict(
                title="优秀党员",
                household_id=r["household_id"],
                resident_id=r["resident_id"],
                score=r["score"],
                stars=r["stars"],
                text=f"{year}年度党员评星 {r['stars']} 星",
            )
            for r in members[:top]
        ]
    return []


def check_period(session: Session, village: Village, period: str, now: datetime) -> Scheme:
    """Return the household scheme if its period `period` may get a 星级文明户 list at `now`:
    the scheme designates per period, the period is closed and its claims' 公示 has ended."""
    scheme = scheme_of(session, village, "household")
    if scheme is None:
        raise ValidationError("本村没有农户积分方案", errors={"period": ["没有农户积分方案"]})
    if household_cadence(scheme) != PERIOD:
        raise ConflictError("本村星级文明户按年度评定，不按期评定", reason="cadence_year")
    try:
        period_start(scheme.period_kind, period)
    except ValueError:
        raise ValidationError(
            "积分周期格式不对",
            errors={"period": [f"应为本方案的周期，如 {period_example(scheme)}"]},
        ) from None
    closed = session.execute(
        select(Period.id).where(
            Period.scheme_id == scheme.id,
            Period.key == period,
            Period.status == PeriodStatus.CLOSED,
        )
    ).first()
    if closed is None:
        raise ConflictError(f"{period_label(period)}尚未结账，不能评定", reason="period_open")
    if now < notice_ends(scheme, period):
        raise ConflictError(f"{period_label(period)}的公示尚未结束，不能评定", reason="notice_open")
    return scheme


def household_scheme(session: Session, village: Village) -> Scheme | None:
    """Return the village's household scheme (the one 星级文明户 are designated from)."""
    return scheme_of(session, village, "household")


def period_example(scheme: Scheme | None) -> str:
    """Return an example period key of the scheme, for forms and messages."""
    kind = scheme.period_kind if scheme else "quarter"
    return {"month": "2025-07", "quarter": "2025-Q3"}.get(kind, "2025")


def notice_ends(scheme: Scheme, period: str) -> datetime:
    """Return when the last claims of a period have passed 公示 (its end + the notice days)."""
    return period_end_utc(scheme.period_kind, period) + timedelta(days=scheme.notice_days or 0)


def draft_list(
    session: Session,
    *,
    village: Village,
    kind: str,
    now: datetime,
    year: int | None = None,
    period: str = "",
    actor_id: int | None = None,
) -> HonourList:
    """Draft the year's list of `kind` (or the household scheme's period `period` of
    星级文明户) from the ledger; return the live list if one exists."""
    if kind not in set(HonourKind):
        raise ValidationError("不支持的荣誉类别", errors={"kind": ["不支持"]})
    period = (period or "").strip()
    if period:
        if kind != HonourKind.HOUSEHOLD_STARS:
            raise ValidationError(
                "只有星级文明户可以按期评定", errors={"period": ["只适用于星级文明户"]}
            )
        scheme = check_period(session, village, period, now)
        first = period_start(scheme.period_kind, period).year
        if year is not None and year != first:
            raise ValidationError("年份与积分周期不符", errors={"year": [f"应为 {first}"]})
        year = first
    else:
        if year is None:
            raise ValidationError("请填写年份", errors={"year": ["不能为空"]})
        check_year(year, now)
        if kind == HonourKind.HOUSEHOLD_STARS:
            scheme = scheme_of(session, village, "household")
            if scheme is not None and household_cadence(scheme) == PERIOD:
                raise ConflictError(
                    "本村星级文明户按积分周期评定，请选择周期", reason="cadence_period"
                )
    existing = live_list(session, village=village, kind=kind, year=year, period=period)
    if existing is not None:
        return existing
    item = HonourList(
        village_id=village.id,
        kind=kind,
        year=year,
        period=period,
        status=HonourStatus.DRAFT,
        created_at=now,
        created_by=actor_id,
    )
    session.add(item)
    session.flush()
    _fill(session, village, item)
    return item


def _fill(session: Session, village: Village, item: HonourList) -> None:
    rows = _rows(session, village, item.kind, item.year, item.period)
    if rows:
        # One bulk INSERT, not one per household.
        session.execute(
            insert(HonourEntry),
            [
                dict(
                    village_id=village.id,
                    list_id=item.id,
                    source="auto",
                    removed=False,
                    review_score=r.pop("review_score", None),
                    **r,
                )
                for r in rows
            ],
        )
    session.refresh(item)


def redraft_list(
    session: Session, *, item: HonourList, now: datetime, actor_id: int | None = None
) -> HonourList:
    """Recompute a draft's entries from the ledger and 民主评议 as they are now.

    Nominations stay; the computed rows (removals included) are replaced. Whoever recomputes
    becomes the list's maker, so they cannot approve it either.
    """
    if item.status != HonourStatus.DRAFT:
        raise ConflictError("只有草稿可以重新计算", reason="wrong_status", status=item.status)
    session.execute(
        delete(HonourEntry).where(HonourEntry.list_id == item.id, HonourEntry.source == "auto")
    )
    if actor_id is not None:
        item.created_by = actor_id
    item.created_at = now
    session.flush()
    _fill(session, session.get(Village, item.village_id), item)
    return item


def live_list(
    session: Session, *, village: Village, kind: str, year: int, period: str = ""
) -> HonourList | None:
    """Return the year's (or the period's) draft, approved or published list of `kind`."""
    return session.execute(
        select(HonourList).where(
            HonourList.village_id == village.id,
            HonourList.kind == kind,
            HonourList.year == year,
            HonourList.period == period,
            HonourList.status.in_(LIVE),
        )
    ).scalar_one_or_none()


# --- the scheduler's job: draft last year's lists from January 20th -----------------------------


def _due(session: Session, now: datetime) -> list[WorkItem]:
    return _due_years(session, now) + _due_periods(session, now)


def _due_years(session: Session, now: datetime) -> list[WorkItem]:
    today = local_date(now)
    if today.month == 1 and today.day < DRAFT_FROM_DAY:
        return []
    year = today.year - 1
    key = f"honours:{year}"
    done = set(
        session.execute(
            select(CycleRun.village_id).where(CycleRun.kind == JOB, CycleRun.key == key)
        ).scalars()
    )
    return [
        WorkItem(JOB, vid, key, {"year": year}, label=f"{year}年度评星与表彰草稿")
        for vid in session.execute(select(Village.id).order_by(Village.id)).scalars()
        if vid not in done
    ]


# A village switching to per-period stars gets lists for the periods of the past year only.
BACKFILL = timedelta(days=366)


def _due_periods(session: Session, now: datetime) -> list[WorkItem]:
    """One item per closed period of a per-period household scheme whose 公示 has ended."""
    schemes = [
        s
        for s in session.execute(
            select(Scheme).where(Scheme.subject_kind == "household").order_by(Scheme.id)
        ).scalars()
        if household_cadence(s) == PERIOD and s.id == _first_household_scheme(session, s)
    ]
    if not schemes:
        return []
    done = set(
        session.execute(
            select(CycleRun.village_id, CycleRun.key).where(
                CycleRun.kind == JOB, CycleRun.key.like("honours:period:%")
            )
        ).all()
    )
    out = []
    for scheme in schemes:
        keys = session.execute(
            select(Period.key).where(
                Period.scheme_id == scheme.id, Period.status == PeriodStatus.CLOSED
            )
        ).scalars()
        for key in sorted(keys, key=lambda k: period_start(scheme.period_kind, k)):
            job_key = f"honours:period:{key}"
            ends = period_end_utc(scheme.period_kind, key)
            if (scheme.village_id, job_key) in done or now < notice_ends(scheme, key):
                continue
            if ends < now - BACKFILL:
                continue
            out.append(
                WorkItem(
                    JOB,
                    scheme.village_id,
                    job_key,
                    {"period": key},
                    label=f"{period_label(key)}星级文明户草稿",
                )
            )
    return out


def _first_household_scheme(session: Session, scheme: Scheme) -> int | None:
    village = session.get(Village, scheme.village_id)
    first = scheme_of(session, village, "household")
    return first.id if first else None


def _run(session: Session, item: WorkItem, now: datetime) -> dict:
    village = session.get(Village, item.village_id)
    if "period" in item.params:
        made = draft_list(
            session,
            village=village,
            kind=HonourKind.HOUSEHOLD_STARS,
            period=item.params["period"],
            now=now,
        )
        return {"lists": {str(HonourKind.HOUSEHOLD_STARS): made.id}}
    year = item.params["year"]
    household = scheme_of(session, village, "household")
    drafted = {}
    for kind in AUTO_KINDS:
        if kind == HonourKind.PARTY_STARS and scheme_of(session, village, "resident") is None:
            continue
        if (
            kind == HonourKind.HOUSEHOLD_STARS
            and household is not None
            and household_cadence(household) == PERIOD
        ):
            continue  # drafted period by period instead
        drafted[str(kind)] = draft_list(session, village=village, kind=kind, year=year, now=now).id
    return {"lists": drafted}


register_job(Job(JOB, _due, _run, order=75))
