"""The printed household card sheet: it opens as a PDF, reads in Chinese, and every QR code on
it decodes to a live card of the village (rendered with PDFium, decoded with zxing-cpp)."""

from __future__ import annotations

import pypdfium2 as pdfium
import zxingcpp
from sqlalchemy import select

from api.shop.cli import cards
from points.db import make_engine, make_sessionmaker
from points.models import HouseholdCard, Resident
from points.shop.credentials import format_serial
from tests.api.conftest import auth, make_app
from tests.factories import make_group, make_household, make_scheme, make_village
from tests.processes import points as _points

CARD = "PTSCARD:"


def page_text(page) -> str:
    """A page's text character by character (get_text_range drops some subset-font text)."""
    import pypdfium2.raw as raw

    textpage = page.get_textpage()
    return "".join(
        chr(raw.FPDFText_GetUnicode(textpage.raw, i)) for i in range(textpage.count_chars())
    )


def read_sheet(pdf: bytes) -> tuple[list[str], str, int]:
    """Return the QR texts, the text layer and the page count of a PDF."""
    doc = pdfium.PdfDocument(pdf)
    try:
        codes, text = [], []
        for page in doc:
            image = page.render(scale=200 / 72).to_pil()
            # QR codes only: a page of text can misread as a 1D barcode ("391000" once, on CI).
            found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
            codes += [r.text for r in found]
            text.append(page_text(page))
        return codes, "\n".join(text), len(doc)
    finally:
        doc.close()


def _village_with_households(db_url, n=12):
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            village = make_village(s, "cards-a", name="东山村")
            make_scheme(s, village)
            group = make_group(s, village, "第一村民小组")
            homes = [make_household(s, village, group) for _ in range(n)]
            for i, home in enumerate(homes):
                s.get(Resident, home.head_id).name = "张" + "建国秀英"[i % 4] + "三"
            return [h.number for h in homes]
    finally:
        engine.dispose()


def _live_serials(db_url) -> set[str]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            return set(
                s.execute(
                    select(HouseholdCard.serial).where(HouseholdCard.revoked_at.is_(None))
                ).scalars()
            )
    finally:
        engine.dispose()


def test_the_cli_sheet_decodes_to_live_cards_and_reads_in_chinese(db_url, tmp_path):
    numbers = _village_with_households(db_url, 12)
    out = tmp_path / "cards.pdf"
    result = _points(db_url, "cards", "--village", "cards-a", str(out))
    assert result.returncode == 0, result.stderr
    assert "12 张户卡，2 页" in result.stdout

    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF") and b"NotoSansSC" in pdf and b"/FontFile2" in pdf  # embedded
    codes, text, pages = read_sheet(pdf)
    live = _live_serials(db_url)
    assert pages == 2 and len(live) == 12
    assert sorted(codes) == sorted(CARD + serial for serial in live)
    assert "东山村 积分超市" in text and f"户号 {numbers[0]}" in text
    assert "户主 张*三" in text and "张建三" not in text  # masked, never in full
    assert all(format_serial(serial) in text for serial in live)  # typed by hand if need be


def test_reissuing_a_card_from_the_cli_revokes_the_old_serial(db_url, tmp_path):
    numbers = _village_with_households(db_url, 3)
    app = make_app(db_url)
    runner = app.test_cli_runner()  # in-process: the command, not the interpreter's start-up
    first = tmp_path / "first.pdf"
    assert runner.invoke(cards, [str(first)]).exit_code == 0
    before = _live_serials(db_url)
    again = tmp_path / "again.pdf"
    result = runner.invoke(cards, ["--household", numbers[1], "--reissue", str(again)])
    assert result.exit_code == 0, result.output
    (code,) = read_sheet(again.read_bytes())[0]
    after = _live_serials(db_url)
    assert code.removeprefix(CARD) in after and code.removeprefix(CARD) not in before
    assert len(after) == 3 and len(before & after) == 2
    unknown = runner.invoke(cards, ["--household", "nope", str(again)])
    assert unknown.exit_code != 0 and "nope" in unknown.output
    app.extensions["points.engine"].dispose()


def test_the_api_sheet_prints_the_cards_the_admin_issued(client, world):
    url = f"/api/v1/villages/{world.a.code}/cards"
    issued = client.post(url, json={}, headers=auth(world.tokens["admin"]))
    assert issued.status_code == 201 and issued.json["issued"] == 2  # home1 and home2
    sheet = client.get(url + "/sheet.pdf", headers=auth(world.tokens["admin"]))
    assert sheet.status_code == 200 and sheet.mimetype == "application/pdf"
    codes, text, pages = read_sheet(sheet.data)
    serials = {c["serial"].replace("-", "") for c in issued.json["cards"]}
    assert pages == 1 and sorted(codes) == sorted(CARD + s for s in serials)
    assert f"户号 {world.home1.number}" in text
    one = client.get(
        url + f"/sheet.pdf?household_id={world.home2.id}", headers=auth(world.tokens["admin"])
    )
    assert len(read_sheet(one.data)[0]) == 1
    assert client.get(url + "/sheet.pdf", headers=auth(world.tokens["clerk"])).status_code == 403
