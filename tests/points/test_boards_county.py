"""A county's boards drafted together (issue 18): the same boards, row for row, as drafting each
village alone, in the same number of statements for 3 or 9 villages; the scheduler drafts every
due village in one go, exactly once, and one village whose drafting fails does not stop the rest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from points import boards, catalog, claims, cycles, effective
from points.catalog import Category
from points.claims import ClaimInput
from points.errors import ValidationError
from points.models import Board, CycleRun, Household, Village
from points.models.catalog import SubjectKind
from points.models.org import PrivacyMode
from points.periods import PeriodKind
from tests.factories import (
    adopt_catalog,
    make_group,
    make_household,
    make_scheme,
    make_user,
    make_village,
)
from tests.points.test_scale import counting

MONTH = "2026-11"
DRAFT_AT = datetime(2026, 12, 2, 2, tzinfo=UTC)  # 10:00 on 2 December in Beijing
CUSTOM = [
    *catalog.DEFAULT_CATEGORIES,
    Category(name="乡风文明", description="移风易俗", black=True),
]
PLAIN = [*catalog.DEFAULT_CATEGORIES, Category(name="乡风文明", description="移风易俗")]
_RULE = dict(unit="time", recorder_roles=["admin"], subjects=["household"])
RULES = [
    dict(_RULE, code="MEI-01", name="庭院整洁", category="德治", points=5, review="never"),
    dict(_RULE, code="SHAN-01", name="见义勇为", category="德治", points=20, review="never",
         honourable=True),
    dict(_RULE, code="FZ-51", name="赌博", category="法治", sign=-1, points=10, review="always",
         veto="year"),
    dict(_RULE, code="FZ-52", name="打架斗殴", category="法治", sign=-1, points=4, review="always"),
    dict(_RULE, code="XF-51", name="大操大办", category="乡风文明", sign=-1, points=3,
         review="always"),
    dict(_RULE, code="MEI-51", name="乱倒垃圾", category="德治", sign=-1, points=2, review="never"),
    dict(_RULE, code="MEI-52", name="毁坏公物", category="德治", subcategory="违反村规民约",
         sign=-1, points=2, review="always"),
]  # fmt: skip
_PARTY = dict(unit="time", review="never", recorder_roles=["admin"], subjects=["party_member"])
PARTY_RULES = [
    dict(_PARTY, code="DJ-01", name="参加主题党日", category="党建", points=40),
    dict(_PARTY, code="DJ-51", name="违反党纪", category="党建", sign=-1, points=5, veto="year"),
]


class County:
    """`n` villages that differ where drafting could mix them up: period kinds, board sizes
    and 黑榜 terms (one changed within the month, one announced for later), categories marked
    for the 黑榜, privacy modes, ties, vetoes, reversals and party members."""

    def __init__(self, session, n: int):
        self.s = session
        self.villages = [self._village(k) for k in range(n)]
        session.flush()

    def _post(self, v, scheme, home, code, on: date, resident_id=None, **kw):
        when = datetime(on.year, on.month, on.day, 2, tzinfo=UTC)
        kw.setdefault("description", "经核实")
        item = ClaimInput(
            household_id=home.id, resident_id=resident_id, rule_code=code, occurred_on=on, **kw
        )
        claim = claims.record(
            self.s, village=v["village"], scheme=scheme, actor=v["admin"], item=item, now=when
        )
        if claim.status == "pending_review":
            claims.approve(self.s, claim=claim, actor=v["reviewer"], now=when)
        return claims.post_claim(self.s, claim_id=claim.id, now=when + timedelta(days=8))

    def _village(self, k: int) -> dict:
        s = self.s
        village = make_village(
            s,
            privacy_mode=PrivacyMode.NAMED if k % 2 else PrivacyMode.MASKED,
            black_months=(k % 3) + (0 if k % 4 == 3 else 1),  # 1, 2, 3, 0, …
            board_top_n=3 if k % 2 else 10,
        )
        group = make_group(s, village, "一组")
        homes = []
        for number in ("12", "3", "7", "20", "3-7", "0009"):
            home = make_household(s, village, group, members=2)
            home.number = number
            homes.append(home)
        homes[0].members[1].is_party_member = True
        homes[1].members[1].is_party_member = True
        homes[2].members[0].is_party_member = True
        scheme = make_scheme(
            s, village, period_kind=PeriodKind.MONTH if k % 3 == 1 else PeriodKind.QUARTER
        )
        party = make_scheme(
            s,
            village,
            "party",
            name="党员积分",
            subject_kind=SubjectKind.RESIDENT,
            period_kind=PeriodKind.YEAR if k % 2 else PeriodKind.QUARTER,
            redeemable=False,
            base_score=50,
            star_thresholds=[60, 80, 100, 120, 150],
        )
        start = datetime(2026, 1, 1, 2, tzinfo=UTC)
        adopt_catalog(s, scheme, RULES, now=start, categories=CUSTOM if k % 2 == 0 else PLAIN)
        adopt_catalog(s, party, PARTY_RULES, now=start)
        v = dict(
            village=village,
            admin=make_user(s, village, "admin"),
            reviewer=make_user(s, village, "reviewer"),
        )
        h12, h3, h7, h20, h37, h9 = homes
        nov, octo = date(2026, 11, 3), date(2026, 10, 5)
        # A tie at 10 points: 3, 0009 and 3-7 (numbers sort as numbers, before text); 12 has
        # 4 × 5 − 2 − 4 − 3 = 11 with four deductions (one reversed); 7 has 40 but is vetoed.
        for home in (h12, h12, h12, h3, h3, h37, h37, h9, h9):
            self._post(v, scheme, home, "MEI-01", nov)
        self._post(v, scheme, h12, "MEI-51", nov)
        self._post(v, scheme, h12, "MEI-01", nov + timedelta(days=1))
        for _ in range(4):
            self._post(v, scheme, h7, "MEI-01", nov)
        self._post(v, scheme, h7, "FZ-51", date(2026, 8, 1))  # a year-long veto (法治, August)
        self._post(v, scheme, h7, "SHAN-01", nov, proposed_points=20, description="扑灭山火")
        self._post(v, scheme, h20, "SHAN-01", nov, proposed_points=20, description="救起落水儿童")
        self._post(v, scheme, h20, "MEI-01", date(2026, 10, 20))  # the quarter, not the month
        # Violations this month and earlier, one reversed, one only a deduction (MEI-51).
        self._post(v, scheme, h12, "FZ-52", nov)
        self._post(v, scheme, h12, "XF-51", nov)
        self._post(v, scheme, h9, "MEI-52", octo)
        self._post(v, scheme, h20, "FZ-52", date(2026, 9, 5))
        wrong = self._post(v, scheme, h12, "FZ-52", nov)
        claims.reverse_claim(
            s, claim=wrong, actor=v["admin"], reason="核实有误", now=DRAFT_AT - timedelta(days=5)
        )
        # Party members: stars from the party period's score, one member vetoed.
        p12, p3, p7 = h12.members[1], h3.members[1], h7.members[0]
        self._post(v, party, h12, "DJ-01", date(2026, 10, 9), resident_id=p12.id)
        self._post(v, party, h3, "DJ-01", nov, resident_id=p3.id)
        self._post(v, party, h3, "DJ-01", date(2026, 5, 9), resident_id=p3.id)
        self._post(v, party, h7, "DJ-01", nov, resident_id=p7.id)
        self._post(v, party, h7, "DJ-51", date(2026, 6, 9), resident_id=p7.id)
        # Settings: one change reaching the month's last day, one announced for December.
        if k % 3 == 2:
            effective.change_settings(
                s, target=village, wanted={"board_top_n": 2}, effective_from=date(2026, 11, 15),
                today=date(2026, 11, 15), actor_id=None, now=datetime(2026, 11, 15, 2, tzinfo=UTC),
            )  # fmt: skip
        effective.change_settings(
            s, target=village, wanted={"black_months": 6, "board_top_n": 1},
            effective_from=date(2026, 12, 1), today=date(2026, 11, 20), actor_id=None,
            now=datetime(2026, 11, 20, 2, tzinfo=UTC),
        )  # fmt: skip
        return village


ROW = (
    "kind", "section", "source", "household_id", "resident_id", "claim_id", "entry_id", "rank",
    "score", "stars", "text", "entry_month", "category", "removed", "created_by",
)  # fmt: skip


def _rows(board) -> list[tuple]:
    return [tuple(getattr(e, k) for k in ROW) for e in board.entries]


def _alone(session, villages) -> dict[int, list[tuple]]:
    """Each village's board drafted on its own, then rolled back."""
    out = {}
    for village in villages:
        savepoint = session.begin_nested()
        board = boards.draft_board(session, village=village, month=MONTH, now=DRAFT_AT)
        out[village.id] = _rows(board)
        savepoint.rollback()
    return out


def test_a_county_drafted_together_has_each_villages_board_row_for_row(session):
    county = County(session, 5)
    alone = _alone(session, county.villages)
    drafted = boards.draft_boards(
        session, villages=county.villages, month=MONTH, now=DRAFT_AT, actor_id=None
    )
    assert [b.village_id for b in drafted] == [v.id for v in county.villages]
    assert {v.id: _rows(b) for v, b in zip(county.villages, drafted, strict=True)} == alone
    # What was written is what came back.
    ids = [b.id for b in drafted]
    session.expire_all()
    stored = session.execute(select(Board).where(Board.id.in_(ids))).scalars().all()
    assert {b.village_id: _rows(b) for b in stored} == alone
    assert {(b.month, b.status) for b in stored} == {(MONTH, "draft")}

    # The county exercises what it should: ties cut by board size, vetoes, both 黑榜 rules, the
    # term (the December change does not reach back), the party track.
    def section(k, name, *cols):
        return [tuple(r[c] for c in cols) for r in alone[county.villages[k].id] if r[1] == name]

    first = county.villages[0].id
    homes = dict(
        session.execute(
            select(Household.number, Household.id).where(Household.village_id == first)
        ).all()
    )
    assert section(0, "top", 3, 7, 8, 10) == [
        (homes["20"], 1, 20, "本月得分 20 分"),  # the deed; 7 (40) is vetoed
        (homes["12"], 2, 11, "本月得分 11 分（扣分 4 次）"),
        (homes["3"], 3, 10, "本月得分 10 分"),
        (homes["0009"], 4, 10, "本月得分 10 分"),
        (homes["3-7"], 5, 10, "本月得分 10 分"),
    ]
    assert section(0, "deed", 3, 10) == [(homes["20"], "见义勇为：救起落水儿童")]
    # 1 month, 乡风文明 marked for the 黑榜; the reversed one is not there.
    assert section(0, "violation", 10, 11) == [("打架斗殴", MONTH), ("大操大办", MONTH)]
    # Quarter: 12's member 40 + 50, 3's member 40 + 50 (May is another quarter); 7's vetoed.
    assert section(0, "party", 8, 9) == [(90, 2), (90, 2)]
    assert section(1, "top", 7, 8) == [(1, 20), (2, 11), (3, 10)]  # board_top_n 3
    # Year: 3's member 130, 4 stars. 乡风文明 not marked there: 大操大办 is not on the 黑榜,
    # 毁坏公物 (a 村规民约 rule) is; 2 months.
    assert section(1, "party", 8, 9) == [(130, 4), (90, 2)]
    assert section(1, "violation", 10, 11) == [
        ("打架斗殴", MONTH),
        ("毁坏公物", "2026-10"),
    ]
    assert section(2, "top", 7) == [(1,), (2,)]  # board_top_n 2 from 15 November
    # 3 months (the 6 announced for December would reach August's 赌博).
    assert [r[0] for r in section(2, "violation", 10)] == [
        "打架斗殴",
        "大操大办",
        "毁坏公物",
        "打架斗殴",
    ]
    assert section(3, "violation", 10) == []  # black_months 0
    assert {v.privacy_mode for v in county.villages} == {"named", "masked"}


def test_a_village_with_a_live_board_keeps_it_and_the_others_are_drafted(session):
    county = County(session, 3)
    middle = county.villages[1]
    before = boards.draft_board(session, village=middle, month=MONTH, now=DRAFT_AT)
    drafted = boards.draft_boards(
        session, villages=county.villages, month=MONTH, now=DRAFT_AT, actor_id=None
    )
    assert drafted[1].id == before.id
    assert len({b.id for b in drafted}) == 3
    assert (
        boards.draft_boards(session, villages=county.villages, month=MONTH, now=DRAFT_AT) == drafted
    )


def _reloaded(session, villages):
    """The villages as the scheduler reads them: one SELECT, their schemes not yet loaded."""
    session.expire_all()
    ids = [v.id for v in villages]
    return session.execute(select(Village).where(Village.id.in_(ids))).scalars().all()


def test_drafting_3_or_9_villages_sends_the_same_statements(session, engine):
    counts = []
    for n in (3, 9):
        county = County(session, n)
        villages = _reloaded(session, county.villages)
        with counting(engine) as seen:
            drafted = boards.draft_boards(session, villages=villages, month=MONTH, now=DRAFT_AT)
        counts.append(len(seen))
        assert all(b.entries for b in drafted)
    assert counts[0] == counts[1], counts
    # One village: the same statements as a county.
    county = County(session, 1)
    (village,) = _reloaded(session, county.villages)
    with counting(engine) as seen:
        board = boards.draft_board(session, village=village, month=MONTH, now=DRAFT_AT)
    assert len(seen) == counts[0], seen
    assert board.entries


def _drafted(session) -> dict[int, list[Board]]:
    rows = session.execute(select(Board).where(Board.month == MONTH)).scalars().all()
    out: dict[int, list[Board]] = {}
    for b in rows:
        out.setdefault(b.village_id, []).append(b)
    return out


def test_the_scheduler_drafts_every_due_village_once_in_one_go(session, engine):
    county = County(session, 4)
    session.commit()
    ids = {v.id for v in county.villages}
    with counting(engine) as seen:
        report = cycles.reconcile(session, now=DRAFT_AT)
    done = [r for r in report.results if r.item.job == boards.JOB]
    assert {r.item.village_id for r in done} == ids and {r.status for r in done} == {"done"}
    assert all(r.detail["entries"] > 0 for r in done)
    boards_written = [s for s in seen if s.lstrip().upper().startswith("INSERT INTO BOARDS ")]
    assert len(boards_written) == 1  # one INSERT for every village's board
    session.commit()
    again = cycles.reconcile(session, now=DRAFT_AT + timedelta(hours=1))
    assert [r for r in again.results if r.item.job == boards.JOB] == []
    assert {vid: len(b) for vid, b in _drafted(session).items() if vid in ids} == {
        vid: 1 for vid in ids
    }
    runs = session.execute(
        select(CycleRun).where(CycleRun.kind == boards.JOB, CycleRun.key == f"board:{MONTH}")
    ).scalars()
    assert {r.village_id: r.status for r in runs if r.village_id in ids} == {
        vid: "done" for vid in ids
    }


def test_a_village_whose_drafting_fails_does_not_stop_the_others(session, monkeypatch):
    county = County(session, 3)
    session.commit()
    bad = county.villages[1]
    real = boards.monthly._posted

    def failing(session, villages, *args):
        if any(v.id == bad.id for v in villages):
            raise RuntimeError("坏数据")
        return real(session, villages, *args)

    monkeypatch.setattr(boards.monthly, "_posted", failing)
    report = cycles.reconcile(session, now=DRAFT_AT)
    status = {r.item.village_id: r.status for r in report.results if r.item.job == boards.JOB}
    ids = [v.id for v in county.villages]
    assert [status[i] for i in ids] == ["done", "failed", "done"]
    session.commit()
    assert sorted(vid for vid in _drafted(session) if vid in ids) == [ids[0], ids[2]]
    # Mended, the next run drafts the one left, and only it.
    monkeypatch.setattr(boards.monthly, "_posted", real)
    again = cycles.reconcile(session, now=DRAFT_AT + timedelta(hours=1))
    redo = [r for r in again.results if r.item.job == boards.JOB]
    assert [(r.item.village_id, r.status) for r in redo if r.item.village_id in ids] == [
        (bad.id, "done")
    ]


def test_a_month_not_ended_is_refused_for_the_county(session):
    county = County(session, 2)
    with pytest.raises(ValidationError):
        boards.draft_boards(
            session, villages=county.villages, month=MONTH, now=datetime(2026, 11, 20, tzinfo=UTC)
        )
    assert session.execute(select(Board)).scalars().all() == []
