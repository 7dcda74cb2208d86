"""The 红黑榜 follows the village's catalog: good deeds and violations are grouped under their
rule's category, in the catalog's order, under the names the village adopted; the category is
frozen with the board, so a later catalog that renames it does not regroup a published board."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import pypdfium2 as pdfium
from openpyxl import load_workbook

from points import boards, catalog, claims
from points.catalog import Category
from points.claims import ClaimInput
from points.ledger.statements import get_scheme
from points.models import Board, Village
from points.org.access import load_actor
from tests.api.conftest import PASSWORD
from tests.factories import adopt_catalog

OCT = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)
CUSTOM = [
    *catalog.DEFAULT_CATEGORIES,
    Category(name="乡风文明", description="移风易俗、红白喜事简办", black=True),
]
_RULE = dict(unit="time", review="never", recorder_roles=["admin"], subjects=["household"])
RULES = [
    dict(_RULE, code="SHAN-01", name="见义勇为", category="德治", points=20, honourable=True),
    dict(_RULE, code="XF-01", name="婚事新办", category="乡风文明", points=10, honourable=True),
    dict(_RULE, code="FZ-51", name="赌博", category="法治", sign=-1, points=10),
    dict(_RULE, code="XF-51", name="大操大办红白喜事", category="乡风文明", sign=-1, points=5),
]


def _pdf_text(data: bytes) -> str:
    doc = pdfium.PdfDocument(data)
    try:
        return "".join(page.get_textpage().get_text_range() for page in doc)
    finally:
        doc.close()


def _login(client):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"csrf_token": token, "username": "u-admin", "password": PASSWORD})


def _headings(page: str) -> list[str]:
    return [h for h in re.findall(r"<h2 class=\"(?:red|black)\">([^<]+)</h2>", page)]


def _adopt(s, scheme, categories, rules, on):
    now = datetime.combine(on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)
    return adopt_catalog(s, scheme, rules, now=now, adopted_on=on, categories=categories)


def test_a_published_board_groups_by_the_catalogs_categories_and_keeps_them(app, world):
    deeds = ["红榜 · 好人好事 · 德治", "红榜 · 好人好事 · 乡风文明"]
    black = ["黑榜 · 违反村规民约 · 法治", "黑榜 · 违反村规民约 · 乡风文明"]
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = s.get(Village, world.a.id)
        scheme = get_scheme(s, village=village, code="household")
        _adopt(s, scheme, CUSTOM, RULES, date(2026, 10, 1))
        admin = load_actor(s, world.users["admin"].id)
        reviewer = load_actor(s, world.users["reviewer"].id)
        # Recorded 乡风文明 first: the board still shows the catalog's order, not the ledger's.
        for home, code, text in (
            (world.home1, "XF-01", "婚事新办不收彩礼"),
            (world.home2, "SHAN-01", "救起落水儿童"),
            (world.home1, "XF-51", "经核实"),
            (world.home2, "FZ-51", "经核实"),
        ):
            item = ClaimInput(
                household_id=home.id, rule_code=code, occurred_on=OCT.date(), description=text
            )
            claim = claims.record(
                s, village=village, scheme=scheme, actor=admin, item=item, now=OCT
            )
            if claim.status == "pending_review":  # deductions are reviewed
                claims.approve(s, claim=claim, actor=reviewer, now=OCT)
            if claim.status == "in_notice":  # a village with 公示 days: posted after them
                claims.post_claim(s, claim_id=claim.id, now=OCT + timedelta(days=8))
        board = boards.draft_board(
            s, village=village, month="2026-10", now=datetime(2026, 11, 2, 2, tzinfo=UTC)
        )
        assert {e.text: e.category for e in board.entries if e.section != "top"} == {
            "婚事新办：婚事新办不收彩礼": "乡风文明",
            "见义勇为：救起落水儿童": "德治",
            "大操大办红白喜事": "乡风文明",
            "赌博": "法治",
        }
        draft_groups = [g["title"] for g in boards.sections(boards.staff_view(s, board))]
        boards.approve_board(s, board=board, actor=None, now=datetime(2026, 11, 2, 3, tzinfo=UTC))
        boards.publish_board(s, board=board, actor=None, now=datetime(2026, 11, 2, 4, tzinfo=UTC))
        board_id = board.id
    assert [t for t in draft_groups if t in deeds + black] == deeds + black
    assert "红榜 · 好人好事" not in draft_groups

    client = app.test_client()

    def shown():
        page = client.get(f"/public/{world.a.code}/board/2026-10").get_data(as_text=True)
        groups = [h for h in _headings(page) if h in deeds + black]
        assert page.index("婚事新办不收彩礼") > page.index("红榜 · 好人好事 · 乡风文明")
        pdf = _pdf_text(
            client.get(f"/api/v1/public/{world.a.code}/boards/{board_id}/poster.pdf").data
        )
        in_pdf = [t for t in deeds + black if t in pdf]
        assert in_pdf == sorted(in_pdf, key=pdf.index)
        book = client.get(f"/api/v1/public/{world.a.code}/boards/{board_id}/board.xlsx").data
        rows = list(load_workbook(io.BytesIO(book)).active.iter_rows(min_row=7, values_only=True))
        by_text = {r[7]: r[1] for r in rows}
        return groups, in_pdf, by_text

    groups, in_pdf, by_text = shown()
    assert groups == deeds + black and in_pdf == deeds + black
    assert by_text["婚事新办：婚事新办不收彩礼"] == "红榜 · 好人好事 · 乡风文明"
    assert by_text["大操大办红白喜事"] == "黑榜 · 违反村规民约 · 乡风文明"

    _login(client)
    staff = client.get(f"/v/{world.a.code}/boards?board={board_id}").get_data(as_text=True)
    assert re.findall(r'data-category="([^"]+)"', staff) == ["德治", "乡风文明", "法治", "乡风文明"]

    # The village renames 乡风文明 to 文明新风 (and moves it first) from 20 November.
    renamed = [Category(name="文明新风", black=True), *catalog.DEFAULT_CATEGORIES]
    moved = [dict(r, category="文明新风") if r["category"] == "乡风文明" else r for r in RULES]
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        scheme = get_scheme(s, village=s.get(Village, world.a.id), code="household")
        _adopt(s, scheme, renamed, moved, date(2026, 11, 20))
        assert s.get(Board, board_id).status == "published"
    again = shown()
    assert again == (groups, in_pdf, by_text)
    assert "文明新风" not in client.get(f"/public/{world.a.code}/board/2026-10").get_data(
        as_text=True
    )
