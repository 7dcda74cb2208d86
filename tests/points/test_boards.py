"""红黑榜: drafted from what was posted, edited, published as a frozen snapshot, appealed."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from points import boards, claims, cycles, ledger
from points.claims import ClaimInput
from points.errors import ConflictError, PermissionDeniedError
from points.ledger.verify import verify
from points.models import Board
from points.models.boards import BoardStatus
from points.models.org import PrivacyMode
from tests.factories import (
    adopt_catalog,
    make_group,
    make_household,
    make_scheme,
    make_user,
    make_village,
)

RULES = [
    {
        "code": "MEI-01",
        "name": "庭院整洁",
        "category": "德治",
        "sign": 1,
        "points": 5,
        "unit": "time",
        "review": "never",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
    {
        "code": "SHAN-01",
        "name": "见义勇为",
        "category": "德治",
        "sign": 1,
        "min_points": 5,
        "max_points": 30,
        "unit": "time",
        "review": "always",
        "honourable": True,
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
    {
        "code": "FZ-51",
        "name": "赌博",
        "category": "法治",
        "sign": -1,
        "points": 10,
        "unit": "time",
        "review": "always",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
    {
        "code": "MEI-51",
        "name": "乱倒垃圾",
        "category": "德治",
        "sign": -1,
        "points": 2,
        "unit": "time",
        "review": "never",
        "recorder_roles": ["admin", "recorder"],
        "subjects": ["household"],
    },
]
OCT = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


class Town:
    """One village, four households with real-looking names, an admin and a reviewer."""

    def __init__(self, session, privacy=PrivacyMode.MASKED):
        self.s = session
        self.village = make_village(session, privacy_mode=privacy, black_months=2)
        self.group = make_group(session, self.village, "一组")
        self.homes = []
        for number, name in (("12", "张大三"), ("3", "李四"), ("7", "王小五"), ("20", "赵六")):
            home = make_household(session, self.village, self.group, members=1)
            home.number = number
            home.members[0].name = name
            self.homes.append(home)
        self.scheme = make_scheme(session, self.village)
        adopt_catalog(session, self.scheme, RULES, now=OCT)
        self.admin = make_user(session, self.village, "admin")
        self.reviewer = make_user(session, self.village, "reviewer")
        session.flush()

    def post(self, home, code, when=OCT, **kw):
        kw.setdefault("description", "经核实" if code in ("FZ-51", "MEI-51") else "")
        item = ClaimInput(household_id=home.id, rule_code=code, occurred_on=when.date(), **kw)
        claim = claims.record(
            self.s, village=self.village, scheme=self.scheme, actor=self.admin, item=item, now=when
        )
        if claim.status == "pending_review":
            claims.approve(self.s, claim=claim, actor=self.reviewer, now=when)
        return claims.post_claim(self.s, claim_id=claim.id, now=when + timedelta(days=8))

    def october(self):
        h12, h3, h7, h20 = self.homes
        for home in (h12, h12, h3, h3):
            self.post(home, "MEI-01")
        self.post(h7, "MEI-01")
        self.post(h7, "MEI-01")
        self.post(h7, "MEI-01")
        self.post(h7, "MEI-01")
        self.gambling = self.post(h7, "FZ-51")
        self.post(h3, "MEI-51")
        self.post(h3, "MEI-01")
        self.post(h3, "MEI-01", when=OCT + timedelta(days=1))
        self.post(h20, "SHAN-01", proposed_points=30, description="救起落水儿童")

    def draft(self, month="2026-10", now=datetime(2026, 11, 2, 2, tzinfo=UTC)):
        return boards.draft_board(self.s, village=self.village, month=month, now=now)


def _section(view, section):
    return [e for e in view["entries"] if e["section"] == section]


def test_stars_count_thresholds_reached():
    assert [boards.stars(s, [60, 80, 100, 120, 150]) for s in (0, 59, 60, 99, 150, 999)] == [
        0,
        0,
        1,
        2,
        5,
        5,
    ]
    assert boards.stars(100, None) == 3  # the default thresholds


def test_draft_ranks_by_score_then_fewer_deductions_then_number(session):
    t = Town(session)
    t.october()
    board = t.draft()
    view = boards.staff_view(session, board)
    top = _section(view, "top")
    # h20 30; h3 20-2 = 18? no: h3 has 4×5 − 2 = 18; h12 10; h7 20 − 10 = 10 with a deduction.
    assert [(e["name"], e["rank"], e["score"]) for e in top] == [
        ("赵六（20户）", 1, 30),
        ("李四（3户）", 2, 18),
        ("张大三（12户）", 3, 10),
        ("王小五（7户）", 4, 10),
    ]
    deeds = _section(view, "deed")
    assert [(e["name"], e["text"]) for e in deeds] == [("赵六（20户）", "见义勇为：救起落水儿童")]
    black = [e for e in view["entries"] if e["kind"] == "black"]
    # Gambling (法治) is a 村规民约 violation; dumping rubbish (德治) is a deduction, not the 黑榜.
    assert [(e["name"], e["text"], e["score"]) for e in black] == [("王小五（7户）", "赌博", -10)]
    assert "扣分次数少" in view["tie_rule"]
    assert t.draft().id == board.id  # drafting again returns the same board


def test_black_entries_need_posting_and_drop_off_after_the_term(session):
    t = Town(session)
    t.october()
    # A reversed deduction and one refused after an upheld objection never reach the 黑榜.
    reversed_one = t.post(t.homes[0], "FZ-51")
    claims.reverse_claim(
        session, claim=reversed_one, actor=t.admin, reason="核实有误", now=OCT + timedelta(days=9)
    )
    objected = claims.record(
        session,
        village=t.village,
        scheme=t.scheme,
        actor=t.admin,
        now=OCT,
        item=ClaimInput(
            household_id=t.homes[1].id,
            rule_code="FZ-51",
            occurred_on=OCT.date(),
            description="经核实",
        ),
    )
    claims.approve(session, claim=objected, actor=t.reviewer, now=OCT)
    objection = claims.object_to(session, claim=objected, actor=t.admin, reason="不是他", now=OCT)
    claims.resolve_objection(
        session, objection=objection, actor=t.reviewer, uphold=True, note="查实", now=OCT
    )
    oct_board = t.draft()
    assert [e.text for e in oct_board.entries if e.kind == "black"] == ["赌博"]
    nov = t.draft("2026-11", now=datetime(2026, 12, 1, 2, tzinfo=UTC))
    assert [e.entry_month for e in nov.entries if e.kind == "black"] == ["2026-10"]
    dec = t.draft("2026-12", now=datetime(2027, 1, 1, 2, tzinfo=UTC))
    assert [e for e in dec.entries if e.kind == "black"] == []  # black_months = 2


def _publish(t, board, now=datetime(2026, 11, 3, 2, tzinfo=UTC)):
    boards.approve_board(t.s, board=board, actor=t.admin, now=now)
    return boards.publish_board(t.s, board=board, actor=t.admin, now=now)


@pytest.mark.parametrize(
    "mode,who",
    [
        (PrivacyMode.NAMED, "王小五（7户）"),
        (PrivacyMode.MASKED, "王*五"),
        (PrivacyMode.GROUP, "一组"),
    ],
)
def test_privacy_mode_decides_the_names_published(session, mode, who):
    t = Town(session, privacy=mode)
    t.october()
    board = _publish(t, t.draft())
    black = [e for e in boards.public_view(board)["entries"] if e["kind"] == "black"]
    assert [e["who"] for e in black] == [who]
    if mode != PrivacyMode.NAMED:
        assert "7户" not in str(board.snapshot)


def test_published_board_is_frozen_when_privacy_changes(session):
    t = Town(session)
    t.october()
    board = _publish(t, t.draft())
    session.commit()
    seen = boards.public_view(board)["entries"]
    assert "王*五" in [e["who"] for e in seen]
    t.village.privacy_mode = PrivacyMode.NAMED
    session.commit()
    session.expire_all()
    again = session.get(Board, board.id)
    assert boards.public_view(again)["entries"] == seen
    assert again.privacy_mode == "masked"
    # The next board is published in the new mode.
    nov = t.draft("2026-11", now=datetime(2026, 12, 1, 2, tzinfo=UTC))
    nov = _publish(t, nov, now=datetime(2026, 12, 2, 2, tzinfo=UTC))
    assert "王小五（7户）" in [e["who"] for e in boards.public_view(nov)["entries"]]


def test_publication_prints_the_chain_head_verify_reports(session):
    t = Town(session)
    t.october()
    board = _publish(t, t.draft())
    assert (board.head_seq, board.head_hash) == ledger.chain_head(session, t.village.id)
    report = verify(session, village_code=t.village.code)
    assert report.ok and report.heads[t.village.code] == (board.head_seq, board.head_hash)
    assert board.snapshot["head"] == {"seq": board.head_seq, "hash": board.head_hash}


def test_admin_edits_a_draft_then_approves_and_publishes(session):
    t = Town(session)
    t.october()
    board = t.draft()
    deed = next(e for e in board.entries if e.section == "deed")
    with pytest.raises(Exception, match="理由"):
        boards.remove_entry(session, board=board, entry_id=deed.id, actor=t.admin, reason=" ")
    boards.remove_entry(
        session, board=board, entry_id=deed.id, actor=t.admin, reason="本人不愿上榜"
    )
    nominee = boards.add_nomination(
        session, board=board, actor=t.admin, household_id=t.homes[0].id, text="照顾孤寡老人"
    )
    with pytest.raises(PermissionDeniedError):
        boards.add_nomination(
            session, board=board, actor=t.reviewer, household_id=t.homes[0].id, text="x"
        )
    with pytest.raises(ConflictError):
        boards.publish_board(session, board=board, actor=t.admin, now=OCT)  # not approved yet
    board = _publish(t, board)
    texts = [e["text"] for e in board.snapshot["entries"]]
    assert "照顾孤寡老人" in texts and "见义勇为：救起落水儿童" not in texts
    assert nominee.id in [e["id"] for e in board.snapshot["entries"]]
    with pytest.raises(ConflictError):
        boards.remove_entry(session, board=board, entry_id=nominee.id, actor=t.admin, reason="晚了")


def test_withdrawal_leaves_a_notice_and_frees_the_month(session):
    t = Town(session)
    t.october()
    board = _publish(t, t.draft())
    boards.withdraw_board(session, board=board, actor=t.admin, reason="名单有误", now=OCT)
    shown = boards.month_board(session, village=t.village, month="2026-10")
    view = boards.public_view(shown)
    assert view["status"] == "withdrawn" and view["withdraw_reason"] == "名单有误"
    assert view["entries"] == []
    again = t.draft()
    assert again.id != board.id and again.status == BoardStatus.DRAFT


def test_upheld_appeal_publishes_a_correction_and_keeps_the_original(session):
    t = Town(session)
    t.october()
    board = _publish(t, t.draft())
    black = next(e for e in board.entries if e.kind == "black")
    owner = make_user(session, t.village, "resident", resident=t.homes[2].members[0])
    stranger = make_user(session, t.village, "resident", resident=t.homes[0].members[0])
    with pytest.raises(PermissionDeniedError):
        boards.appeal(session, board=board, entry_id=black.id, actor=stranger, reason="x", now=OCT)
    item = boards.appeal(
        session, board=board, entry_id=black.id, actor=owner, reason="那天我在外地", now=OCT
    )
    with pytest.raises(ConflictError):
        boards.appeal(session, board=board, entry_id=black.id, actor=owner, reason="再", now=OCT)
    later = datetime(2026, 11, 10, 2, tzinfo=UTC)
    boards.resolve_appeal(
        session, appeal=item, actor=t.reviewer, uphold=True, resolution="查实有误", now=later
    )
    session.refresh(board)
    fixed = session.get(Board, item.correction_board_id)
    assert board.status == BoardStatus.SUPERSEDED and board.corrected_by == fixed.id
    assert fixed.status == BoardStatus.PUBLISHED and fixed.correction_of == board.id
    assert [e for e in fixed.snapshot["entries"] if e["kind"] == "black"] == []
    assert fixed.snapshot["correction"]["reason"] == "查实有误"
    assert len(board.snapshot["entries"]) == len(fixed.snapshot["entries"]) + 1
    assert boards.month_board(session, village=t.village, month="2026-10").id == fixed.id
    assert {b.id for b in boards.list_boards(session, village=t.village)} == {board.id, fixed.id}


def test_reconcile_drafts_last_months_board_once_on_the_first(session):
    t = Town(session)
    t.october()
    session.commit()
    before = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)  # 23:00 on the 31st in Beijing
    cycles.reconcile(session, now=before)
    october = select(Board).where(Board.month == "2026-10")
    assert session.execute(october).scalars().all() == []
    first = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 November in Beijing
    report = cycles.reconcile(session, now=first)
    drafted = [r for r in report.done if r.item.job == "board_draft"]
    assert [r.item.key for r in drafted] == ["board:2026-10"]
    session.commit()
    again = cycles.reconcile(session, now=first + timedelta(hours=1))
    assert [r for r in again.results if r.item.job == "board_draft"] == []
    rows = session.execute(october).scalars().all()
    assert [(b.month, b.status) for b in rows] == [("2026-10", "draft")]
    assert any(e.section == "top" for e in rows[0].entries)
