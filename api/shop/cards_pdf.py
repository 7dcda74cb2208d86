"""The printed household card sheet: A4, 2 × 5 cards, large Chinese type, a vector QR each.

The font is Noto Sans SC, embedded as a subset (api/web/pdf_fonts.py), so a laptop with no CJK
fonts installed still prints readable cards. The QR is drawn as squares, not as an image, so
it stays sharp at any printer resolution.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from sqlalchemy.orm import Session

from api.web import qr
from api.web.pdf_fonts import cjk_font
from points import org
from points.models import HouseholdCard, Village
from points.org import mask_name
from points.shop.credentials import format_serial

COLUMNS, ROWS = 2, 5
CARD_W, CARD_H = 90 * mm, 52 * mm
GAP = 3 * mm
QR_SIZE = 40 * mm


def sheet_for(session: Session, village: Village, cards: list[HouseholdCard]) -> bytes:
    """Return the PDF sheet of these cards: village, household number, masked head, group."""
    groups = {g.id: g.name for g in org.list_groups(session, village=village)}
    faces = [
        CardFace(
            village_name=village.name,
            household_number=card.household.number,
            head_name=mask_name(card.household.head.name) if card.household.head else "—",
            group_name=groups.get(card.household.group_id, ""),
            serial=card.serial,
        )
        for card in cards
    ]
    return render_sheet(faces, title=f"{village.name} 积分超市户卡")


@dataclass(frozen=True)
class CardFace:
    """What one card shows; the head's name is already masked."""

    village_name: str
    household_number: str
    head_name: str
    group_name: str
    serial: str  # the stored serial; printed grouped, encoded with its prefix


def render_sheet(cards: list[CardFace], *, title: str = "积分超市户卡") -> bytes:
    """Return a PDF of the cards, ten to an A4 page, with cutting lines."""
    font = cjk_font(Path(__file__).read_text(encoding="utf-8"), title, repr(cards))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    pdf.setTitle(title)
    pdf.setAuthor("village-points")
    page_w, page_h = A4
    left = (page_w - COLUMNS * CARD_W - (COLUMNS - 1) * GAP) / 2
    top = page_h - (page_h - ROWS * CARD_H - (ROWS - 1) * GAP) / 2
    per_page = COLUMNS * ROWS
    for index, card in enumerate(cards):
        if index and index % per_page == 0:
            pdf.showPage()
        slot = index % per_page
        x = left + (slot % COLUMNS) * (CARD_W + GAP)
        y = top - (slot // COLUMNS + 1) * CARD_H - (slot // COLUMNS) * GAP
        _card(pdf, card, x, y, font)
    if not cards:
        pdf.setFont(font, 16)
        pdf.drawString(left, top - 20 * mm, "没有可打印的户卡")
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _card(pdf: canvas.Canvas, card: CardFace, x: float, y: float, font: str) -> None:
    pdf.setLineWidth(0.4)
    pdf.setDash(3, 2)  # a cutting line
    pdf.roundRect(x, y, CARD_W, CARD_H, 3 * mm)
    pdf.setDash()
    pad = 4 * mm
    text_x = x + pad
    pdf.setFont(font, 11)
    pdf.drawString(text_x, y + CARD_H - pad - 11, f"{card.village_name} 积分超市")
    pdf.setFont(font, 20)
    pdf.drawString(text_x, y + CARD_H - pad - 36, f"户号 {card.household_number}")
    pdf.setFont(font, 16)
    pdf.drawString(text_x, y + CARD_H - pad - 60, f"户主 {card.head_name}")
    if card.group_name:
        pdf.setFont(font, 11)
        pdf.drawString(text_x, y + CARD_H - pad - 78, card.group_name)
    pdf.setFont(font, 8)
    pdf.drawString(text_x, y + pad + 10, f"No. {format_serial(card.serial)}")
    pdf.setFont(font, 7)
    pdf.drawString(text_x, y + pad, "凭卡兑换，遗失请到村委会挂失补办")
    qr.draw_pdf(
        pdf,
        qr.card_payload(card.serial),
        x + CARD_W - QR_SIZE - 3 * mm,
        y + (CARD_H - QR_SIZE) / 2,
        QR_SIZE,
    )
