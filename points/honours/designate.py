"""Drafting a year's honour lists from the ledger, and the scheduler's yearly job.

星级文明户: every active household of the household scheme gets the stars its average period
score of the year reaches (the scheme's thresholds). 评星定级: every active party member gets
the stars of the party score combined with the branch's 民主评议 (points.honours.rules). Yearly
表彰: the best households (最美家庭) and party members (优秀党员) are nominated from those
scores; 优秀群众 and 道德模范 come from the review group's nominations. A 一票否决 posted in
the year (any window) bars the subject from all of the year's honours.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from points.boards import stars
from points.claims.veto import vetoed
from points.cycles.jobs import Job, WorkItem, register_job
from points.errors import ConflictError, ValidationError
from points.honours.rules import (
    STARS,
    average_score,
    honour_rules,
    party_stars,
    review_value,
)
from points.models import CycleRun, Household, JournalEntry, Resident, Scheme, Village
from points.models.honours import (
    HonourEntry,
    HonourKind,
    HonourList,
    HonourStatus,
    PartyReview,
)
from points.periods import local_date

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


def barred_in_year(session: Session, scheme: Scheme, year: int) -> dict[int, str]:
    """Return {subject: reason} for subjects with a 一票否决 in any month of the year."""
    out: dict[int, str] = {}
    for month in range(1, 13):
        for subject, reason in vetoed(session, scheme=scheme, on=date(year, month, 1)).items():
            out.setdefault(subject, reason)
    return out


def _year_totals(session: Session, scheme: Scheme, year: int, column) -> dict[int, int]:
    rows = session.execute(
        select(column, func.sum(JournalEntry.score_delta))
        .where(
            JournalEntry.scheme_id == scheme.id,
            JournalEntry.month >= f"{year:04d}-01",
            JournalEntry.month <= f"{year:04d}-12",
        )
        .group_by(column)
    ).all()
    return {k: int(v or 0) for k, v in rows if k is not None}


def household_scores(session: Session, village: Village, year: int) -> list[dict]:
    """Return each active household's average period score and stars, best first; barred
    households carry the veto's reason and no stars."""
    scheme = scheme_of(session, village, "household")
    if scheme is None:
        return []
    totals = _year_totals(session, scheme, year, JournalEntry.household_id)
    barred = barred_in_year(session, scheme, year)
    homes = session.execute(
        select(Household.id, Household.head_id).where(
            Household.village_id == village.id, Household.active.is_(True)
        )
    ).all()
    out = []
    for hid, head_id in homes:
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


def _rows(session: Session, village: Village, kind: str, year: int) -> list[dict]:
    """The entries a list of `kind` starts with (the 道德模范 roll starts empty)."""
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


def draft_list(
    session: Session,
    *,
    village: Village,
    kind: str,
    year: int,
    now: datetime,
    actor_id: int | None = None,
) -> HonourList:
    """Draft the year's list of `kind` from the ledger; return the live list if one exists."""
    if kind not in set(HonourKind):
        raise ValidationError("不支持的荣誉类别", errors={"kind": ["不支持"]})
    check_year(year, now)
    existing = live_list(session, village=village, kind=kind, year=year)
    if existing is not None:
        return existing
    item = HonourList(
        village_id=village.id,
        kind=kind,
        year=year,
        status=HonourStatus.DRAFT,
        created_at=now,
        created_by=actor_id,
    )
    session.add(item)
    session.flush()
    _fill(session, village, item)
    return item


def _fill(session: Session, village: Village, item: HonourList) -> None:
    rows = _rows(session, village, item.kind, item.year)
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


def live_list(session: Session, *, village: Village, kind: str, year: int) -> HonourList | None:
    """Return the year's draft, approved or published list of `kind`, if any."""
    return session.execute(
        select(HonourList).where(
            HonourList.village_id == village.id,
            HonourList.kind == kind,
            HonourList.year == year,
            HonourList.status.in_(LIVE),
        )
    ).scalar_one_or_none()


# --- the scheduler's job: draft last year's lists from January 20th -----------------------------


def _due(session: Session, now: datetime) -> list[WorkItem]:
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


def _run(session: Session, item: WorkItem, now: datetime) -> dict:
    village = session.get(Village, item.village_id)
    year = item.params["year"]
    drafted = {}
    for kind in AUTO_KINDS:
        if kind == HonourKind.PARTY_STARS and scheme_of(session, village, "resident") is None:
            continue
        drafted[str(kind)] = draft_list(session, village=village, kind=kind, year=year, now=now).id
    return {"lists": drafted}


register_job(Job(JOB, _due, _run, order=75))
