"""红黑榜: monthly boards drafted from the ledger, edited and published by admins, star ratings.

A board for month M is drafted on or after the 1st of M+1 (the `board_draft` job) from what was
posted: the 红榜 lists the month's top households by score, good deeds under rules marked
honourable, party members' stars and admin nominations; the 黑榜 lists posted deductions for
breaking the 村规民约 (a claim is posted only after its 公示 ended with no upheld objection) that
were not reversed, for `village.black_months` boards after posting. Publishing freezes a
snapshot with names already written per the village's privacy mode and the ledger head at that
moment, so a later privacy change alters the next board and never a published one. Withdrawal
leaves a notice; an upheld appeal publishes a correction that supersedes the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import and_, bindparam, case, func, insert, inspect, or_, select
from sqlalchemy.orm import Session

from points import ledger
from points.catalog import (
    adopted_version,
    black_names,
    categories_from_json,
    categories_of,
    ordered,
)
from points.claims.notices import display_name
from points.claims.veto import vetoed, vetoed_by_scheme
from points.cycles.jobs import Job, WorkItem, register_job
from points.db import lock_village
from points.effective import in_force, in_force_villages
from points.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from points.ledger.journal import in_param, in_values
from points.models import (
    CatalogRule,
    CatalogVersion,
    Claim,
    CycleRun,
    Group,
    Household,
    JournalEntry,
    Resident,
    Scheme,
    Village,
)
from points.models.boards import (
    AppealStatus,
    Board,
    BoardAppeal,
    BoardEntry,
    BoardStatus,
    EntryKind,
    Section,
)
from points.models.claims import ClaimStatus
from points.models.org import PrivacyMode, Role
from points.org.access import Actor
from points.periods import local_date, month_key, next_period_start, period_key

DEFAULT_STARS = (60, 80, 100, 120, 150)
TIE_RULE = "排名按本月得分从高到低；得分相同的，本月被扣分次数少的在前；仍相同的，按户号从小到大。"
JOB = "board_draft"
LIVE = (BoardStatus.DRAFT, BoardStatus.APPROVED, BoardStatus.PUBLISHED)
SHOWN = (BoardStatus.PUBLISHED, BoardStatus.WITHDRAWN, BoardStatus.SUPERSEDED)
COMPACT = "村规民约"
_COPIED = (
    "kind",
    "section",
    "source",
    "household_id",
    "resident_id",
    "claim_id",
    "entry_id",
    "rank",
    "score",
    "stars",
    "text",
    "entry_month",
    "category",
    "created_by",
)
# How each section reads on the board; good deeds and violations are then grouped by the
# category of their rule, in the catalog's order, under the village's own category names.
SECTION_TITLES = (
    (Section.TOP, "红榜 · 本月积分前列"),
    (Section.DEED, "红榜 · 好人好事"),
    (Section.NOMINATION, "红榜 · 村两委推荐"),
    (Section.PARTY, "党员星级"),
    (Section.VIOLATION, "黑榜 · 违反村规民约"),
)
BY_CATEGORY = (Section.DEED, Section.VIOLATION)


class ConflictOfInterestError(PermissionDeniedError):
    """Someone resolved an appeal about their own household; the attempt is audited."""

    code = "conflict_of_interest"
    message = "不能处理涉及自己家庭的申诉（回避原则）"


# --- stars ---------------------------------------------------------------------------------------


def stars(score: int, thresholds: list[int] | tuple[int, ...] | None) -> int:
    """Return 0–5 stars: how many of the five ascending thresholds the score reaches."""
    return sum(1 for t in (thresholds or DEFAULT_STARS)[:5] if score >= t)


def subject_stars(session: Session, *, scheme: Scheme, subject_id: int, period: str) -> int:
    """Return a household's or party member's stars for a scheme period (for statements).

    A 一票否决 posted in the period (its window reaching the period's last day) means none.
    """
    score = ledger.period_score(session, scheme=scheme, subject_id=subject_id, period=period)
    last_day = next_period_start(scheme.period_kind, period) - timedelta(days=1)
    if subject_id in vetoed(session, scheme=scheme, on=last_day):
        return 0
    return stars(score, scheme.star_thresholds)


# --- months --------------------------------------------------------------------------------------


def month_shift(month: str, n: int) -> str:
    """Return the month `n` months after (negative: before) 'YYYY-MM'."""
    y, m = int(month[:4]), int(month[5:7])
    total = y * 12 + m - 1 + n
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def _month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def check_month(month: str, now: datetime) -> str:
    """Return `month` if it is a well-formed month that has ended at `now`."""
    try:
        _month_start(month)
        if len(month) != 7 or month[4] != "-":
            raise ValueError
    except ValueError:
        raise ValidationError("月份格式应为 YYYY-MM", errors={"month": ["格式不对"]}) from None
    if month >= month_key(local_date(now)):
        raise ValidationError("该月尚未结束，不能出榜", errors={"month": ["尚未结束"]})
    return month


# --- drafting ------------------------------------------------------------------------------------
#
# Drafting is set-based (issue 18, decision 0022): `draft_boards` drafts any number of villages'
# boards in a constant number of statements (the live boards, the schemes, the settings, the
# vetoes, one top-list GROUP BY, one read of the posted deeds and violations, the catalog
# versions when there are violations, two for party members when there is a party scheme, the
# boards and their entries written in bulk). `draft_board` is its one-village call.


def draft_board(
    session: Session, *, village: Village, month: str, now: datetime, actor_id: int | None = None
) -> Board:
    """Draft the month's board from posted entries; return the live board if one exists."""
    return draft_boards(session, villages=[village], month=month, now=now, actor_id=actor_id)[0]


def draft_boards(
    session: Session,
    *,
    villages: list[Village],
    month: str,
    now: datetime,
    actor_id: int | None = None,
) -> list[Board]:
    """Draft the month's boards of many villages at once; return one board per village given
    (a village's live board when it has one). The boards are those `draft_board` drafts for
    each village alone, in the same statements whatever the number of villages."""
    check_month(month, now)
    unique = list({v.id: v for v in villages}.values())
    if not unique:
        return []
    dialect = session.get_bind().dialect.name
    out = {
        b.village_id: b
        for b in session.execute(
            _live_boards_statement(dialect),
            {"villages": [v.id for v in unique], "month": month},
        ).scalars()
    }
    todo = [v for v in unique if v.id not in out]
    if todo:
        out.update(_draft(session, todo, month, now, actor_id))
    return [out[v.id] for v in villages]


# Drafting's statements are built once per dialect (and shape): building them cost more
# Python than a village's draft spends on anything else.
@lru_cache
def _live_boards_statement(dialect: str):
    return select(Board).where(
        in_param(dialect, Board.village_id, "villages"),
        Board.month == bindparam("month"),
        Board.status.in_(LIVE),
    )


@lru_cache
def _schemes_statement(dialect: str):
    return (
        select(Scheme).where(in_param(dialect, Scheme.village_id, "villages")).order_by(Scheme.id)
    )


def _draft(
    session: Session, villages: list[Village], month: str, now: datetime, actor_id: int | None
) -> dict[int, Board]:
    start = _month_start(month)
    last_day = _month_start(month_shift(month, 1)) - timedelta(days=1)
    schemes = _schemes_of(session, villages)
    # A change announced for a later date does not reach back into this month's board.
    terms = in_force_villages(session, villages=villages, on=last_day)
    household = {v.id: schemes[v.id][0] for v in villages if schemes[v.id][0] is not None}
    party = {v.id: schemes[v.id][1] for v in villages if schemes[v.id][1]}
    # The household scheme's vetoes bar a household from both the top list and the deeds;
    # a party scheme's vetoes bar a member from the stars. One statement for every scheme.
    barred = vetoed_by_scheme(
        session,
        schemes=list(household.values()) + [s for ps in party.values() for s in ps],
        on=start,
    )
    no_one: dict[int, str] = {}
    hbarred = {vid: barred.get(s.id, no_one) for vid, s in household.items()}
    tops = _top(
        session, household, month, hbarred, {vid: terms[vid]["board_top_n"] for vid in household}
    )
    deeds, violations = _posted(
        session, villages, month, hbarred, {v.id: terms[v.id]["black_months"] for v in villages}
    )
    parties = _party(session, party, month, barred)
    # populate_existing: an id a rolled-back draft used is given again (SQLite), and the
    # session may still hold that row; the row just written is the one that counts.
    # render_nulls: the ORM would leave a row's None columns out, and rows of different
    # shapes go in separate INSERTs; with it all villages' rows are one statement.
    boards = session.scalars(
        insert(Board).returning(Board).execution_options(populate_existing=True, render_nulls=True),
        [
            dict(
                village_id=v.id,
                month=month,
                status=BoardStatus.DRAFT,
                created_at=now,
                created_by=actor_id,
            )
            for v in villages
        ],
    ).all()
    by_village = {b.village_id: b for b in boards}
    rows = [
        {**_BLANK, **row, "village_id": v.id, "board_id": by_village[v.id].id, "source": "auto"}
        for v in villages
        for part in (tops, deeds, parties, violations)
        for row in part.get(v.id, ())
    ]
    if rows:
        # One Core executemany for every village's entries (one shape of row: psycopg parses
        # it once; a multi-row VALUES … RETURNING of thousands of parameters costs more to
        # parse than to run). A board's entries load when they are read, as before.
        session.execute(insert(BoardEntry.__table__), rows)
    return by_village


# Every drafted row carries every column, so that all villages' rows are one INSERT.
_BLANK = dict(
    resident_id=None,
    claim_id=None,
    entry_id=None,
    rank=None,
    score=None,
    stars=None,
    text="",
    entry_month=None,
    category=None,
)


def _terms(session: Session, village: Village, month: str) -> dict:
    """The board settings in force on the month's last day (a change announced for a later
    date does not reach back into this month's board; points.effective)."""
    last_day = _month_start(month_shift(month, 1)) - timedelta(days=1)
    return in_force(session, target=village, on=last_day)


def _household_scheme(session: Session, village: Village) -> Scheme | None:
    # The village's schemes (one to three, ordered by id) load once, with the village on the
    # API's path: drafting every village's board then spends no statement per lookup.
    return next((s for s in village.schemes if s.subject_kind == "household"), None)


def _schemes_of(
    session: Session, villages: list[Village]
) -> dict[int, tuple[Scheme | None, list[Scheme]]]:
    """{village id: (its first household scheme, its party schemes)}, ordered by id as
    `village.schemes` is: from the villages' loaded schemes, else one statement for all."""
    if all("schemes" not in inspect(v).unloaded for v in villages):
        found = {v.id: list(v.schemes) for v in villages}
    else:
        found = {v.id: [] for v in villages}
        statement = _schemes_statement(session.get_bind().dialect.name)
        for scheme in session.execute(statement, {"villages": list(found)}).scalars():
            found[scheme.village_id].append(scheme)
    return {
        vid: (
            next((s for s in found[vid] if s.subject_kind == "household"), None),
            [s for s in found[vid] if s.subject_kind == "resident"],
        )
        for vid in found
    }


def _in_periods(session: Session, schemes: list[Scheme], start: date):
    """Entries in the period containing `start` of their own scheme (schemes may differ in
    period kind): one condition for all the schemes."""
    by_period: dict[str, list[int]] = {}
    for scheme in schemes:
        by_period.setdefault(period_key(scheme.period_kind, start), []).append(scheme.id)
    if len(by_period) == 1:
        return JournalEntry.period_key == next(iter(by_period))
    return or_(
        *(
            in_values(session, JournalEntry.scheme_id, ids) & (JournalEntry.period_key == period)
            for period, ids in by_period.items()
        )
    )


def _top(
    session: Session,
    schemes: dict[int, Scheme],
    month: str,
    barred: dict[int, dict],
    top_n: dict[int, int],
) -> dict[int, list[dict]]:
    """Each village's best households: score desc, then fewer deductions, then number.

    One statement for every village: the month's score and deductions and the period's score
    (for the stars) of every household of the villages' household schemes, grouped as the raw
    county GROUP BY groups them. The database ranks each scheme's households by score and
    deductions and returns only those placed within the board's size (all of a tie at the
    cut), not the county's 10,000 rows; the household number then orders ties here, as it
    sorts numbers as numbers.
    """
    schemes = {vid: s for vid, s in schemes.items() if top_n[vid] > 0}
    if not schemes:
        return {}
    by_scheme = {s.id: (vid, s) for vid, s in schemes.items()}
    start = _month_start(month)
    # Schemes may differ in period kind: the entries of each period key's schemes.
    by_period: dict[str, list[int]] = {}
    for scheme in schemes.values():
        by_period.setdefault(period_key(scheme.period_kind, start), []).append(scheme.id)
    # A vetoed household is left out before ranking: it takes no place on the list.
    vetoed_homes = sorted({hid for vid in schemes for hid in barred[vid]})
    params = {
        "villages": list(schemes),
        "schemes": list(by_scheme),
        "month": month,
        "vetoed": vetoed_homes,
        "places": max(top_n[vid] for vid in schemes),
    }
    for i, (period, ids) in enumerate(by_period.items()):
        params[f"p{i}"], params[f"s{i}"] = period, ids
    statement = _top_statement(session.get_bind().dialect.name, len(by_period), bool(vetoed_homes))
    rows = session.execute(statement, params).all()
    found: dict[int, list[tuple]] = {}
    for sid, hid, num, score, ded, ps in rows:
        found.setdefault(by_scheme[sid][0], []).append((hid, num, int(score), int(ded), int(ps)))
    out = {}
    for vid, ranked_rows in found.items():
        scheme = schemes[vid]
        ranked_rows.sort(key=lambda r: (-r[2], r[3], _number_key(r[1])))
        out[vid] = [
            dict(
                kind=EntryKind.RED,
                section=Section.TOP,
                household_id=hid,
                rank=rank,
                score=score,
                stars=stars(scheme.base_score + ps, scheme.star_thresholds),
                text=f"本月得分 {score} 分" + (f"（扣分 {ded} 次）" if ded else ""),
            )
            for rank, (hid, _num, score, ded, ps) in enumerate(ranked_rows[: top_n[vid]], start=1)
        ]
    return out


_ENTRY = JournalEntry.__table__
_HOUSEHOLD = Household.__table__


@lru_cache
def _top_statement(dialect: str, periods: int, vetoed: bool):
    """`_top`'s statement, built once for each shape (a few): Core, with every value bound
    (`villages`, `schemes`, `month`, the periods `p0`… with their schemes `s0`…, `vetoed`,
    `places`). The caller's first ORM read flushed the session (boards, households)."""
    je, home = _ENTRY.c, _HOUSEHOLD.c
    in_month = je.month == bindparam("month")
    if periods == 1:
        period_of = je.period_key == bindparam("p0")
    else:
        period_of = or_(
            *(
                in_param(dialect, je.scheme_id, f"s{i}") & (je.period_key == bindparam(f"p{i}"))
                for i in range(periods)
            )
        )
    in_period = period_of & je.resident_id.is_(None)
    month_score = func.sum(case((in_month, je.score_delta), else_=0))
    deductions = func.sum(case((in_month & (je.kind == "deduction"), 1), else_=0))
    period_score = func.sum(case((in_period, je.score_delta), else_=0))
    # The entries are summed per household first and joined to the households after, a few
    # hundred rows a village rather than every entry; both sides name the villages, so that
    # the database reads only their entries and households (not the county's to join a few).
    grouped = (
        select(
            je.village_id.label("village_id"),
            je.scheme_id.label("scheme_id"),
            je.household_id.label("household_id"),
            month_score.label("score"),
            deductions.label("deductions"),
            period_score.label("period_score"),
        )
        .where(
            in_param(dialect, je.village_id, "villages"),
            in_param(dialect, je.scheme_id, "schemes"),
            in_month | period_of,
            je.household_id.is_not(None),
            *([~in_param(dialect, je.household_id, "vetoed")] if vetoed else []),
        )
        # The village with the scheme (one scheme is one village's): on Citus each village's
        # households are grouped and ranked where its entries are.
        .group_by(je.village_id, je.scheme_id, je.household_id)
        .having(month_score > 0)
        .subquery()
    )
    place = (
        func.rank()
        .over(
            partition_by=(grouped.c.village_id, grouped.c.scheme_id),
            order_by=(grouped.c.score.desc(), grouped.c.deductions),
        )
        .label("place")
    )
    ranked = (
        select(
            grouped.c.scheme_id,
            grouped.c.household_id,
            home.number,
            grouped.c.score,
            grouped.c.deductions,
            grouped.c.period_score,
            place,
        )
        .join(
            _HOUSEHOLD,
            and_(home.id == grouped.c.household_id, home.village_id == grouped.c.village_id),
        )
        .where(home.active.is_(True), in_param(dialect, home.village_id, "villages"))
        .subquery()
    )
    return select(
        ranked.c.scheme_id,
        ranked.c.household_id,
        ranked.c.number,
        ranked.c.score,
        ranked.c.deductions,
        ranked.c.period_score,
    ).where(ranked.c.place <= bindparam("places"))


def _number_key(number: str) -> tuple:
    # Household numbers are text ('0012', '3-7'): numeric ones sort as numbers, before others.
    return (0, int(number), number) if number.isdigit() else (1, 0, number)


_ENTRIES = JournalEntry.__table__
_REVERSAL = _ENTRIES.alias("reversal")
# Built once (an alias costs more to build than the statement it is in), and of Core columns
# only: an ORM subquery kept across calls is altered by its first compilation, so the second
# statement to hold it would miss the compiled cache once more.
_NOT_REVERSED = ~(
    select(_REVERSAL.c.id)
    .where(
        _REVERSAL.c.reverses_id == _ENTRIES.c.id,
        _REVERSAL.c.village_id == _ENTRIES.c.village_id,
    )
    .exists()
)


@lru_cache
def _posted_statement(dialect: str, violations: bool):
    """`_posted`'s read, built once per dialect and shape (deeds only, or with violations)."""
    deed_rule = (CatalogRule.sign == 1) & CatalogRule.honourable.is_(True)
    deed = (JournalEntry.month == bindparam("month")) & (JournalEntry.kind == "award") & deed_rule
    violation = (JournalEntry.kind == "deduction") & (CatalogRule.sign == -1)
    return (
        select(
            JournalEntry.village_id,
            JournalEntry.id,
            JournalEntry.kind,
            JournalEntry.score_delta,
            JournalEntry.memo,
            JournalEntry.month,
            Claim.id,
            Claim.household_id,
            Claim.resident_id,
            CatalogRule.version_id,
            CatalogRule.name,
            CatalogRule.subcategory,
            CatalogRule.category,
        )
        # A claim's posting entry is the one it names (claims.entry_id) and that names it:
        # both are said, and the village on both sides, so that the planner may start from
        # the month's entries or from the village's posted claims, whichever is fewer.
        .join(
            Claim,
            and_(
                Claim.id == JournalEntry.claim_id,
                Claim.village_id == JournalEntry.village_id,
                Claim.entry_id == JournalEntry.id,
            ),
        )
        .join(
            CatalogRule,
            and_(
                CatalogRule.id == JournalEntry.rule_id,
                CatalogRule.village_id == JournalEntry.village_id,
            ),
        )
        .where(
            in_param(dialect, JournalEntry.village_id, "villages"),
            in_param(dialect, Claim.village_id, "villages"),
            in_param(dialect, JournalEntry.month, "months"),
            Claim.status == bindparam("posted"),
            _NOT_REVERSED,
            (deed | violation) if violations else deed,
        )
        .order_by(JournalEntry.village_id, JournalEntry.seq)
    )


def _posted(
    session: Session,
    villages: list[Village],
    month: str,
    barred: dict[int, dict],
    black_months: dict[int, int],
) -> tuple[dict[int, list[dict]], dict[int, list[dict]]]:
    """Each village's good deeds and 黑榜 violations, from one read of posted, unreversed
    claims' entries: awards in the month under rules the catalog marks honourable, and
    deductions for breaking the 村规民约 within the village's black-list term."""
    terms = {
        vid: {month_shift(month, -i) for i in range(n)} for vid, n in black_months.items() if n > 0
    }
    months = sorted({month}.union(*terms.values()))
    ids = [v.id for v in villages]
    statement = _posted_statement(session.get_bind().dialect.name, bool(terms))
    rows = session.execute(
        statement,
        {"villages": ids, "months": months, "month": month, "posted": ClaimStatus.POSTED.value},
    ).all()
    deeds: dict[int, list[dict]] = {}
    wrong: list[tuple] = []
    for row in rows:
        vid, eid, kind, score, memo, emonth, cid, hid, rid, _version, _name, _sub, category = row
        if kind == "award":
            if hid not in barred.get(vid, ()):
                deeds.setdefault(vid, []).append(
                    dict(
                        kind=EntryKind.RED,
                        section=Section.DEED,
                        household_id=hid,
                        resident_id=rid,
                        claim_id=cid,
                        entry_id=eid,
                        score=score,
                        text=memo[:200],
                        entry_month=emonth,
                        category=category,
                    )
                )
        elif emonth in terms.get(vid, ()):
            wrong.append(row)
    if not wrong:
        return deeds, {}
    # Which categories' deductions are breaches of the 村规民约 is catalog data (0019): each
    # rule is judged by the categories of its own version. A rule naming the compact counts too.
    black = {
        version_id: black_names(categories_from_json(categories))
        for version_id, categories in session.execute(
            select(CatalogVersion.id, CatalogVersion.categories).where(
                in_values(session, CatalogVersion.village_id, sorted({row[0] for row in wrong}))
            )
        )
    }
    violations: dict[int, list[dict]] = {}
    for vid, eid, _kind, score, _memo, emonth, cid, hid, rid, version, name, sub, category in wrong:
        if category in black.get(version, ()) or COMPACT in name or COMPACT in (sub or ""):
            violations.setdefault(vid, []).append(
                dict(
                    kind=EntryKind.BLACK,
                    section=Section.VIOLATION,
                    household_id=hid,
                    resident_id=rid,
                    claim_id=cid,
                    entry_id=eid,
                    score=score,
                    # The rule's name only: a claim's free text may say more than is fair.
                    text=name,
                    entry_month=emonth,
                    category=category,
                )
            )
    return deeds, violations


def _party(
    session: Session, schemes: dict[int, list[Scheme]], month: str, barred: dict[int, dict]
) -> dict[int, list[dict]]:
    """Party members with at least one star in each party scheme's period containing the
    month: two statements for every village (the period totals, the members)."""
    if not schemes:
        return {}
    start = _month_start(month)
    flat = [s for ss in schemes.values() for s in ss]
    totals: dict[int, dict] = {s.id: {} for s in flat}
    for sid, rid, total in session.execute(
        select(JournalEntry.scheme_id, JournalEntry.resident_id, func.sum(JournalEntry.score_delta))
        .where(
            in_values(session, JournalEntry.scheme_id, [s.id for s in flat]),
            _in_periods(session, flat, start),
        )
        .group_by(JournalEntry.scheme_id, JournalEntry.resident_id)
    ):
        totals[sid][rid] = total
    members: dict[int, list[tuple[int, int]]] = {vid: [] for vid in schemes}
    for rid, hid, vid in session.execute(
        select(Resident.id, Resident.household_id, Resident.village_id)
        .where(
            in_values(session, Resident.village_id, list(schemes)),
            Resident.is_party_member.is_(True),
            Resident.active.is_(True),
        )
        .order_by(Resident.id)
    ):
        members[vid].append((rid, hid))
    out: dict[int, list[dict]] = {}
    for vid, village_schemes in schemes.items():
        for scheme in village_schemes:
            period = period_key(scheme.period_kind, start)
            vetoed_here = barred.get(scheme.id, {})
            rated = []
            for rid, hid in members[vid]:
                if rid in vetoed_here:
                    continue
                score = scheme.base_score + int(totals[scheme.id].get(rid) or 0)
                n = stars(score, scheme.star_thresholds)
                if n:
                    rated.append((n, score, rid, hid))
            rated.sort(key=lambda r: (-r[0], -r[1], r[2]))
            out.setdefault(vid, []).extend(
                dict(
                    kind=EntryKind.RED,
                    section=Section.PARTY,
                    household_id=hid,
                    resident_id=rid,
                    score=score,
                    stars=n,
                    text=f"{scheme.name} {period}：{'★' * n}",
                )
                for n, score, rid, hid in rated
            )
    return out


# --- editing, approval, publication --------------------------------------------------------------


def _require(board: Board, status: BoardStatus, doing: str) -> None:
    if board.status != status:
        raise ConflictError(
            f"该榜单当前状态不能{doing}", reason="wrong_status", status=board.status
        )


def add_nomination(
    session: Session,
    *,
    board: Board,
    actor: Actor,
    household_id: int,
    text: str,
    resident_id: int | None = None,
) -> BoardEntry:
    """Add an admin's nomination (推荐) to a draft's 红榜."""
    village = session.get(Village, board.village_id)
    actor.require(village, Role.ADMIN)
    _require(board, BoardStatus.DRAFT, "修改")
    household = session.get(Household, household_id)
    if household is None or household.village_id != village.id:
        raise NotFoundError("找不到该农户")
    if resident_id is not None:
        person = session.get(Resident, resident_id)
        if person is None or person.household_id != household.id:
            raise ValidationError("该村民不是这户的成员", errors={"resident_id": ["不属于该户"]})
    if not (text or "").strip():
        raise ValidationError("请写明推荐事迹", errors={"text": ["不能为空"]})
    _not_vetoed(session, village, board.month, household.id, resident_id)
    entry = BoardEntry(
        village_id=village.id,
        board_id=board.id,
        kind=EntryKind.RED,
        section=Section.NOMINATION,
        source="nomination",
        household_id=household.id,
        resident_id=resident_id,
        text=text.strip()[:500],
        created_by=actor.user_id,
    )
    session.add(entry)
    session.flush()
    session.refresh(board)
    return entry


def _not_vetoed(session, village: Village, month: str, household_id: int, resident_id) -> None:
    """Refuse an honour for a subject a 一票否决 bars this month (household or party track)."""
    schemes = session.execute(select(Scheme).where(Scheme.village_id == village.id)).scalars()
    for scheme in schemes:
        subject = resident_id if scheme.subject_kind == "resident" else household_id
        reason = vetoed(session, scheme=scheme, on=_month_start(month)).get(subject)
        if subject is not None and reason:
            raise ConflictError(f"该户（人）因一票否决本期不能上红榜：{reason}", reason="vetoed")


def get_entry(session: Session, *, board: Board, entry_id: int) -> BoardEntry:
    """Return an entry of the board; raise NotFoundError."""
    entry = session.get(BoardEntry, entry_id)
    if entry is None or entry.board_id != board.id:
        raise NotFoundError("找不到该榜单条目")
    return entry


def remove_entry(
    session: Session, *, board: Board, entry_id: int, actor: Actor, reason: str
) -> BoardEntry:
    """Take an entry off a draft, keeping the row and the reason for the record."""
    actor.require(session.get(Village, board.village_id), Role.ADMIN)
    _require(board, BoardStatus.DRAFT, "修改")
    entry = get_entry(session, board=board, entry_id=entry_id)
    if entry.removed:
        raise ConflictError("该条目已经移除", reason="already_removed")
    if not (reason or "").strip():
        raise ValidationError("移除条目必须写明理由", errors={"reason": ["不能为空"]})
    entry.removed, entry.removed_reason, entry.removed_by = True, reason.strip(), actor.user_id
    session.flush()
    return entry


def approve_board(session: Session, *, board: Board, actor: Actor | None, now: datetime) -> Board:
    """Approve a draft: it can no longer be edited, only published (actor None: the CLI)."""
    if actor is not None:
        actor.require(session.get(Village, board.village_id), Role.ADMIN)
    _require(board, BoardStatus.DRAFT, "审定")
    # Maker ≠ checker, as for claims: the admin who drafted the board does not approve it
    # (a board the scheduler drafted has no maker; any admin may approve it).
    if actor is not None and board.created_by is not None and actor.user_id == board.created_by:
        raise PermissionDeniedError(
            "起草本榜的人不能审定本榜（起草与审定分离）", reason="maker_checker"
        )
    board.status = BoardStatus.APPROVED
    board.approved_at, board.approved_by = now, actor.user_id if actor else None
    session.flush()
    return board


def publish_board(session: Session, *, board: Board, actor: Actor | None, now: datetime) -> Board:
    """Publish an approved board: freeze names (per privacy mode) and the ledger head."""
    village = session.get(Village, board.village_id)
    if actor is not None:
        actor.require(village, Role.ADMIN)
    _require(board, BoardStatus.APPROVED, "发布")
    # Hold the chain lock so the head printed is the chain's head at this instant.
    lock_village(session, village.id)
    seq, hash_ = ledger.chain_head(session, village.id)
    snapshot = _snapshot(session, village, board, seq, hash_, now)
    board.status = BoardStatus.PUBLISHED
    board.published_at, board.published_by = now, actor.user_id if actor else None
    board.head_seq, board.head_hash = seq, hash_
    board.privacy_mode = snapshot["privacy_mode"]
    board.snapshot = snapshot
    session.flush()
    return board


def withdraw_board(
    session: Session, *, board: Board, actor: Actor, reason: str, now: datetime
) -> Board:
    """Withdraw a published board; a notice with the reason stays where it was."""
    actor.require(session.get(Village, board.village_id), Role.ADMIN)
    _require(board, BoardStatus.PUBLISHED, "撤回")
    if not (reason or "").strip():
        raise ValidationError("撤回必须写明理由", errors={"reason": ["不能为空"]})
    board.status = BoardStatus.WITHDRAWN
    board.withdrawn_at, board.withdrawn_by, board.withdraw_reason = now, actor.user_id, reason
    session.flush()
    return board


@dataclass(frozen=True)
class _Names:
    who: str
    group: str
    name: str  # the real name, for staff only


def _names(session: Session, village: Village, entry: BoardEntry) -> _Names:
    home = session.get(Household, entry.household_id)
    group = session.get(Group, home.group_id)
    person = session.get(Resident, entry.resident_id) if entry.resident_id else None
    head = session.get(Resident, home.head_id) if home.head_id else None
    named = person or head
    return _Names(
        who=display_name(village, home, person, group, head),
        group=group.name,
        name=f"{named.name if named else '（未登记）'}（{home.number}户）",
    )


def _snapshot(session, village, board, seq, hash_, now) -> dict:
    terms = in_force(session, target=village, on=local_date(now))
    items = []
    for entry in board.entries:
        if entry.removed:
            continue
        names = _names(session, village, entry)
        items.append(
            {
                "id": entry.id,
                "kind": entry.kind,
                "section": entry.section,
                "rank": entry.rank,
                "who": names.who,
                "group": names.group,
                "score": entry.score,
                "stars": entry.stars,
                "text": entry.text,
                "month": entry.entry_month,
                "category": entry.category,
            }
        )
    return {
        "village": {"code": village.code, "name": village.name},
        "month": board.month,
        # Published with the settings in force today: privacy is how it is shown now.
        "privacy_mode": terms["privacy_mode"],
        "tie_rule": TIE_RULE,
        "black_months": _terms(session, village, board.month)["black_months"],
        "head": {"seq": seq, "hash": hash_},
        "published_at": now.isoformat(),
        "entries": items,
        # The order of the board's category groups, frozen with it (0019).
        "categories": category_order(session, village, board),
        "correction": None,
    }


# --- appeals and corrections ---------------------------------------------------------------------


def appeal(
    session: Session, *, board: Board, entry_id: int, actor: Actor, reason: str, now: datetime
) -> BoardAppeal:
    """A resident appeals an entry about their own household on a published board."""
    village = session.get(Village, board.village_id)
    actor.require(village, Role.RESIDENT)
    _require(board, BoardStatus.PUBLISHED, "申诉")
    entry = get_entry(session, board=board, entry_id=entry_id)
    if entry.removed:
        raise NotFoundError("找不到该榜单条目")
    if actor.household_id != entry.household_id:
        raise PermissionDeniedError("只能对涉及自己家庭的条目提出申诉")
    if not (reason or "").strip():
        raise ValidationError("请写明申诉理由", errors={"reason": ["不能为空"]})
    taken = session.execute(
        select(BoardAppeal.id).where(
            BoardAppeal.board_entry_id == entry.id,
            BoardAppeal.raised_by == actor.user_id,
            BoardAppeal.status == AppealStatus.OPEN,
        )
    ).first()
    if taken:
        raise ConflictError("您对该条目的申诉正在处理中", reason="appeal_open")
    item = BoardAppeal(
        village_id=village.id,
        board_id=board.id,
        board_entry_id=entry.id,
        raised_by=actor.user_id,
        reason=reason.strip()[:2000],
        status=AppealStatus.OPEN,
        created_at=now,
    )
    session.add(item)
    session.flush()
    return item


def resolve_appeal(
    session: Session,
    *,
    appeal: BoardAppeal,
    actor: Actor,
    uphold: bool,
    resolution: str,
    now: datetime,
) -> BoardAppeal:
    """Dismiss an appeal, or uphold it: a correction without the entry supersedes the board."""
    village = session.get(Village, appeal.village_id)
    actor.require(village, Role.ADMIN, Role.REVIEWER)
    entry = session.get(BoardEntry, appeal.board_entry_id)
    if actor.household_id is not None and actor.household_id == entry.household_id:
        raise ConflictOfInterestError(household_id=entry.household_id, doing="处理申诉")
    if appeal.status != AppealStatus.OPEN:
        raise ConflictError("该申诉已经处理过了", reason="appeal_resolved")
    if not (resolution or "").strip():
        raise ValidationError("请写明处理意见", errors={"resolution": ["不能为空"]})
    appeal.resolution, appeal.resolved_by, appeal.resolved_at = (
        resolution.strip(),
        actor.user_id,
        now,
    )
    if not uphold:
        appeal.status = AppealStatus.DISMISSED
        session.flush()
        return appeal
    board = session.get(Board, appeal.board_id)
    if board.status != BoardStatus.PUBLISHED:
        raise ConflictError("该榜单已撤回或已更正，申诉无需更正", reason="board_not_live")
    appeal.status = AppealStatus.UPHELD
    appeal.correction_board_id = correct_board(
        session, board=board, entry=entry, reason=resolution.strip(), actor=actor, now=now
    ).id
    session.flush()
    return appeal


def correct_board(
    session: Session, *, board: Board, entry: BoardEntry, reason: str, actor: Actor, now: datetime
) -> Board:
    """Publish a correction of a board without one entry; the original stays, superseded.

    Names come from the original snapshot: a correction fixes one line, it does not re-apply
    a privacy mode the village may have changed since.
    """
    lock_village(session, board.village_id)
    seq, hash_ = ledger.chain_head(session, board.village_id)
    # The live-month index allows one published board: retire the original first.
    board.status = BoardStatus.SUPERSEDED
    session.flush()
    fixed = Board(
        village_id=board.village_id,
        month=board.month,
        status=BoardStatus.PUBLISHED,
        created_at=now,
        created_by=actor.user_id,
        approved_at=now,
        approved_by=actor.user_id,
        published_at=now,
        published_by=actor.user_id,
        head_seq=seq,
        head_hash=hash_,
        privacy_mode=board.privacy_mode,
        correction_of=board.id,
        snapshot={},
    )
    session.add(fixed)
    session.flush()
    new_ids = {}
    for old in board.entries:
        if old.removed:
            continue
        copy = BoardEntry(
            village_id=old.village_id,
            board_id=fixed.id,
            **{k: getattr(old, k) for k in _COPIED},
        )
        if old.id == entry.id:
            copy.removed, copy.removed_reason, copy.removed_by = True, reason, actor.user_id
        session.add(copy)
        session.flush()
        new_ids[old.id] = copy.id
    snap = dict(board.snapshot)
    snap["entries"] = [
        {**item, "id": new_ids[item["id"]]}
        for item in board.snapshot["entries"]
        if item["id"] != entry.id and item["id"] in new_ids
    ]
    snap["head"] = {"seq": seq, "hash": hash_}
    snap["published_at"] = now.isoformat()
    snap["correction"] = {
        "of": board.id,
        "reason": reason,
        "head_of_original": board.snapshot["head"],
    }
    fixed.snapshot = snap
    board.corrected_by = fixed.id
    session.flush()
    session.refresh(fixed)
    return fixed


# --- reads ---------------------------------------------------------------------------------------


def get_board(session: Session, *, village: Village, board_id: int) -> Board:
    """Return a board of the village; raise NotFoundError."""
    board = session.get(Board, board_id)
    if board is None or board.village_id != village.id:
        raise NotFoundError("找不到该榜单")
    return board


def get_public_board(session: Session, *, village: Village, board_id: int) -> Board:
    """Return a board anyone may read (published, withdrawn or superseded); else NotFoundError."""
    board = get_board(session, village=village, board_id=board_id)
    if board.status not in SHOWN:
        raise NotFoundError("找不到该榜单")
    return board


def live_board(session: Session, *, village: Village, month: str) -> Board | None:
    """Return the month's draft, approved or published board, if any."""
    return session.execute(
        select(Board).where(
            Board.village_id == village.id, Board.month == month, Board.status.in_(LIVE)
        )
    ).scalar_one_or_none()


def month_board(session: Session, *, village: Village, month: str) -> Board | None:
    """Return what the public sees for a month: the published board, else the latest notice."""
    return session.execute(
        select(Board)
        .where(Board.village_id == village.id, Board.month == month, Board.status.in_(SHOWN))
        .order_by(case((Board.status == BoardStatus.PUBLISHED, 0), else_=1), Board.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def list_boards(
    session: Session, *, village: Village, public: bool = True, limit: int = 120
) -> list[Board]:
    """Return the village's boards, newest month first; the public sees no drafts."""
    q = select(Board).where(Board.village_id == village.id)
    if public:
        q = q.where(Board.status.in_(SHOWN))
    return list(
        session.execute(q.order_by(Board.month.desc(), Board.id.desc()).limit(limit)).scalars()
    )


def list_appeals(
    session: Session, *, village: Village, status: str | None = None
) -> list[BoardAppeal]:
    """Return the village's board appeals, newest first."""
    q = select(BoardAppeal).where(BoardAppeal.village_id == village.id)
    if status:
        q = q.where(BoardAppeal.status == status)
    return list(session.execute(q.order_by(BoardAppeal.id.desc())).scalars())


def public_view(board: Board) -> dict:
    """Return a board as anyone may read it: the frozen snapshot, or only the withdrawal notice."""
    view = {
        "id": board.id,
        "month": board.month,
        "status": board.status,
        "published_at": board.published_at,
        "withdrawn_at": board.withdrawn_at,
        "withdraw_reason": board.withdraw_reason,
        "correction_of": board.correction_of,
        "corrected_by": board.corrected_by,
        "head_seq": board.head_seq,
        "head_hash": board.head_hash,
        "privacy_mode": board.privacy_mode,
        "tie_rule": TIE_RULE,
        "entries": [],
        "categories": [],
        "correction": None,
    }
    if board.status != BoardStatus.WITHDRAWN and board.snapshot:
        view["entries"] = board.snapshot["entries"]
        view["categories"] = board.snapshot.get("categories", [])
        view["correction"] = board.snapshot.get("correction")
        view["tie_rule"] = board.snapshot.get("tie_rule", TIE_RULE)
    return view


def staff_view(session: Session, board: Board) -> dict:
    """Return a board for staff: a draft's rows with real and public names and removals."""
    view = public_view(board)
    view["entries"] = []
    village = session.get(Village, board.village_id)
    published = {i["id"]: i for i in (board.snapshot or {}).get("entries", [])}
    for entry in board.entries:
        names = _names(session, village, entry)
        frozen = published.get(entry.id)
        view["entries"].append(
            {
                "id": entry.id,
                "kind": entry.kind,
                "section": entry.section,
                "source": entry.source,
                "rank": entry.rank,
                "who": frozen["who"] if frozen else names.who,
                "group": names.group,
                "name": names.name,
                "household_id": entry.household_id,
                "score": entry.score,
                "stars": entry.stars,
                "text": entry.text,
                "month": entry.entry_month,
                "category": entry.category,
                "removed": entry.removed,
                "removed_reason": entry.removed_reason,
            }
        )
    if not board.snapshot:
        # Not yet published: grouped in the order of the catalog as it stands.
        view["categories"] = category_order(session, village, board)
    return view


def category_order(session: Session, village: Village, board: Board) -> list[str]:
    """Return the categories the board's entries name, in the order of the household catalog
    in force on the month's last day; a category that catalog no longer has comes last."""
    names = {e.category for e in board.entries if e.category and not e.removed}
    if not names:
        return []
    scheme = _household_scheme(session, village)
    last_day = _month_start(month_shift(board.month, 1)) - timedelta(days=1)
    version = adopted_version(session, scheme=scheme, on=last_day) if scheme else None
    return ordered(names, categories_of(version))


def sections(view: dict) -> list[dict]:
    """Return a board view's entries as the board shows them: the sections in order, good deeds
    and violations split into one group per category in the board's frozen category order
    (entries drafted before categories were kept show under their section as before). Each
    group: key (section), category (or None), title, red (bool) and entries."""
    out = []
    order = list(view.get("categories") or [])
    for key, title in SECTION_TITLES:
        rows = [e for e in view["entries"] if e["section"] == key]
        if not rows:
            continue
        red = key != Section.VIOLATION
        if key not in BY_CATEGORY:
            out.append(dict(key=str(key), category=None, title=title, red=red, entries=rows))
            continue
        names = [None] + order + sorted({e.get("category") for e in rows} - set(order) - {None})
        for name in names:
            group = [e for e in rows if e.get("category") == name]
            if group:
                shown = f"{title} · {name}" if name else title
                out.append(dict(key=str(key), category=name, title=shown, red=red, entries=group))
    return out


def privacy_label(mode: str | None) -> str:
    """Return how a privacy mode reads on a board."""
    return {
        PrivacyMode.NAMED: "实名公布",
        PrivacyMode.MASKED: "姓名部分隐去，不公布户号",
        PrivacyMode.GROUP: "只公布到村民小组",
    }.get(mode or "", "")


# --- the scheduler's job: draft last month's board on or after the 1st --------------------------


def _due_drafts(session: Session, now: datetime):
    month = month_shift(month_key(local_date(now)), -1)
    key = f"board:{month}"
    done = set(
        session.execute(
            select(CycleRun.village_id).where(CycleRun.kind == JOB, CycleRun.key == key)
        ).scalars()
    )
    return [
        WorkItem(JOB, vid, key, {"month": month}, label=f"{month} 红黑榜草稿")
        for vid in session.execute(select(Village.id).order_by(Village.id)).scalars()
        if vid not in done
    ]


def _run_draft(session: Session, item, now: datetime) -> dict:
    # One village alone: the runners' fallback when a batch of villages failed.
    return _run_drafts(session, [item], now)[0]


def _run_drafts(session: Session, items: list, now: datetime) -> list[dict]:
    """Draft the due villages' boards together (one set of statements for the county)."""
    villages = {
        v.id: v
        for v in session.execute(
            select(Village).where(
                in_values(session, Village.id, sorted({i.village_id for i in items}))
            )
        ).scalars()
    }
    months: dict[str, list] = {}
    for item in items:
        months.setdefault(item.params["month"], []).append(item)
    drafted = {}
    for month, group in months.items():
        found = draft_boards(
            session, villages=[villages[i.village_id] for i in group], month=month, now=now
        )
        drafted.update(zip(((i.village_id, i.key) for i in group), found, strict=True))
    # Each board's number of entries for the run's detail, counted at once.
    counts = dict(
        session.execute(
            select(BoardEntry.board_id, func.count())
            .where(in_values(session, BoardEntry.board_id, [b.id for b in drafted.values()]))
            .group_by(BoardEntry.board_id)
        ).all()
    )
    return [
        {"board_id": board.id, "entries": counts.get(board.id, 0), "status": board.status}
        for board in (drafted[(i.village_id, i.key)] for i in items)
    ]


def _register() -> None:
    register_job(Job(JOB, _due_drafts, _run_draft, order=70, run_batch=_run_drafts))


_register()
