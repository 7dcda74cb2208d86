"""Every PDF embeds its Chinese font (a subset of Noto Sans SC shipped as a package): rendered
with PDFium, every text object's font is embedded, and no character of its text is drawn with
the font's "missing glyph" box (the · of the poster's section titles included)."""

from __future__ import annotations

import ctypes
import io
from datetime import UTC, date, datetime

import pypdfium2 as pdfium
import pypdfium2.raw as raw
from fontTools.pens.recordingPen import RecordingPen
from fontTools.ttLib import TTFont

from api.cycles.statements import write_pdf
from api.shop.cards_pdf import CardFace, render_sheet
from api.web.pdf_fonts import source_path
from points.cycles.statements import HouseholdStatement, PeriodStatements
from tests.api.conftest import auth


def _font_data(font) -> bytes:
    size = ctypes.c_size_t()
    raw.FPDFFont_GetFontData(font, None, 0, ctypes.byref(size))
    buf = (ctypes.c_uint8 * size.value)()
    raw.FPDFFont_GetFontData(font, buf, size.value, ctypes.byref(size))
    return bytes(buf)


def _outline(font: TTFont, glyph: str):
    pen = RecordingPen()
    font.getGlyphSet()[glyph].draw(pen)
    return pen.value


def check_fonts(pdf: bytes) -> str:
    """Assert every text is set in an embedded font that has a real glyph for each character;
    return the PDF's text."""
    shipped = TTFont(source_path(), lazy=True).getBestCmap()
    doc = pdfium.PdfDocument(pdf)
    texts = []
    try:
        for page in doc:
            textpage = page.get_textpage()
            # Character by character: get_text_range drops characters of some subset fonts.
            text = "".join(
                chr(raw.FPDFText_GetUnicode(textpage.raw, i)) for i in range(textpage.count_chars())
            )
            texts.append(text)
            # A character missing from the document's subset comes out as U+0000.
            missing = {c for c in text if c.strip() and ord(c) not in shipped}
            assert not missing, f"characters not in the embedded font: {missing} in {text!r}"
            seen = 0
            for obj in page.get_objects():
                if obj.type != raw.FPDF_PAGEOBJ_TEXT:
                    continue
                seen += 1
                font = raw.FPDFTextObj_GetFont(obj.raw)
                assert raw.FPDFFont_GetIsEmbedded(font) == 1, "a text is set in a font not embedded"
                embedded = TTFont(io.BytesIO(_font_data(font)))
                order = embedded.getGlyphOrder()
                box = _outline(embedded, order[0])
                # A character the font lacks is drawn with glyph 0, the box: none may be.
                boxes = [g for g in order[1:] if _outline(embedded, g) == box]
                assert box and not boxes, f"glyphs drawn as the missing-glyph box: {boxes}"
            assert seen, "a page without text objects"
    finally:
        doc.close()
    return "\n".join(texts)


def test_the_poster_embeds_its_font_and_prints_the_dot(client, world):
    admin = auth(world.tokens["admin"])
    board_id = client.post(
        "/api/v1/villages/village-a/boards", json={"month": "2026-08"}, headers=admin
    ).json["id"]
    url = f"/api/v1/villages/village-a/boards/{board_id}"
    client.post(
        f"{url}/nominations",
        json={"household_id": world.home1.id, "text": "热心公益，堃喆帮扶孤寡老人★"},
        headers=admin,
    )
    checker = auth(world.tokens["admin2"])  # maker ≠ checker
    client.post(f"{url}/approve", headers=checker)
    client.post(f"{url}/publish", headers=checker)
    for size in ("a4", "a3"):
        pdf = client.get(f"/api/v1/public/village-a/boards/{board_id}/poster.pdf?size={size}")
        assert pdf.status_code == 200
        text = check_fonts(pdf.data)
        assert "红榜 · 村两委推荐" in text and "堃喆" in text


def test_the_period_statement_embeds_its_font():
    line = HouseholdStatement(
        household_id=1,
        number="0101",
        head_name="欧阳堃",
        group_name="一组",
        opening=10,
        awards={"德治": 12, "自治": 3},
        deductions=-2,
        redemptions=-5,
        expired=-1,
        other=0,
        closing=17,
        score=13,
        rank=1,
    )
    stmts = PeriodStatements(
        village_code="demo",
        village_name="示范村",
        scheme_code="household",
        scheme_name="农户积分",
        period="2026-Q4",
        starts_on=date(2026, 10, 1),
        ends_on=date(2026, 12, 31),
        closed_at=datetime(2027, 1, 1, tzinfo=UTC),
        close_policy="reset",
        head=(42, "ab" * 32),
        ranked=1,
        categories=["德治", "自治"],
        lines=[line],
    )
    text = check_fonts(write_pdf(stmts))
    assert "欧阳堃" in text and "ab" * 32 in text.replace("\n", "").replace(" ", "")


def test_the_card_sheet_embeds_its_font():
    faces = [
        CardFace(
            village_name="示范村",
            household_number=f"01{i:02d}",
            head_name="张*喆",
            group_name="一组",
            serial="ABCDEFGHJKMN",
        )
        for i in range(3)
    ]
    text = check_fonts(render_sheet(faces, title="示范村 积分超市户卡"))
    assert "户主 张*喆" in text and "No. " in text
    assert "没有可打印的户卡" in check_fonts(render_sheet([]))
