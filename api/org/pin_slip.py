"""PIN slips (登录凭条) handed to residents in person: A4, 2 × 4 slips a page, cut along the
dashed lines. Each says where to sign in, the phone number (masked: the resident knows it),
the PIN, the household and a reminder to keep the PIN secret. Same built-in CJK font as the
household cards, so any laptop prints it."""

from __future__ import annotations

import io
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
COLUMNS, ROWS = 2, 4
SLIP_W, SLIP_H = 95 * mm, 68 * mm


@dataclass(frozen=True)
class Slip:
    village_name: str
    resident_name: str
    household_number: str
    phone_masked: str
    pin: str
    sign_in_url: str


def render_slips(slips: list[Slip]) -> bytes:
    """Return the A4 PDF of the slips, eight a page."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    pdf.setTitle("村民登录凭条")
    page_w, page_h = A4
    left = (page_w - COLUMNS * SLIP_W) / 2
    top = page_h - (page_h - ROWS * SLIP_H) / 2
    per_page = COLUMNS * ROWS
    for index, slip in enumerate(slips):
        if index and index % per_page == 0:
            pdf.showPage()
        spot = index % per_page
        x = left + (spot % COLUMNS) * SLIP_W
        y = top - (spot // COLUMNS + 1) * SLIP_H
        _slip(pdf, slip, x, y)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def _slip(pdf: canvas.Canvas, slip: Slip, x: float, y: float) -> None:
    pdf.setDash(3, 3)
    pdf.setLineWidth(0.5)
    pdf.rect(x, y, SLIP_W, SLIP_H)
    pdf.setDash()
    pad = 6 * mm
    line = y + SLIP_H - pad - 4 * mm
    pdf.setFont(FONT, 13)
    pdf.drawString(x + pad, line, f"{slip.village_name} 积分登录凭条")
    pdf.setFont(FONT, 11)
    for text in (
        f"姓名：{slip.resident_name}    户号：{slip.household_number}",
        f"登录手机号：{slip.phone_masked}",
    ):
        line -= 7 * mm
        pdf.drawString(x + pad, line, text)
    line -= 11 * mm
    pdf.setFont(FONT, 22)
    pdf.drawString(x + pad, line, f"PIN 码：{slip.pin}")
    pdf.setFont(FONT, 9)
    for text in (
        f"登录网址：{slip.sign_in_url}",
        "用手机号和 PIN 码登录，查看本户积分、申报好人好事、兑换商品。",
        "PIN 码请自己保管，不要告诉别人；忘记了请到村委会重置。",
    ):
        line -= 6 * mm
        pdf.drawString(x + pad, line, text)
