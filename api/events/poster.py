"""The event's printable A4 poster: title, time, place, what it earns, and a large QR to scan.

Noto Sans SC is embedded as a subset (api/web/pdf_fonts.py) and the QR is drawn as vector
squares (api/web/qr.py), so it prints sharp from a laptop with no Chinese fonts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from api.web import qr
from api.web.pdf_fonts import cjk_font

QR_SIZE = 120 * mm


@dataclass(frozen=True)
class PosterFace:
    """What the poster shows (all text already in Chinese)."""

    village_name: str
    title: str
    when: str
    place: str
    earns: str
    audience: str
    url: str
    once: str = "每户签到一次"  # a party-scheme event: 党员本人扫码签到，每人一次


def render(face: PosterFace) -> bytes:
    """Return the poster as a one-page A4 PDF."""
    font = cjk_font(Path(__file__).read_text(encoding="utf-8"), repr(face))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"{face.title} 签到二维码")
    pdf.setAuthor("village-points")
    width, height = A4
    centre = width / 2
    y = height - 30 * mm
    pdf.setFont(font, 16)
    pdf.drawCentredString(centre, y, face.village_name)
    y -= 16 * mm
    pdf.setFont(font, _fit(pdf, face.title, font, 34, width - 30 * mm))
    pdf.drawCentredString(centre, y, face.title)
    y -= 14 * mm
    pdf.setFont(font, 16)
    for line in (f"时间：{face.when}", f"地点：{face.place}", f"参加：{face.audience}"):
        pdf.drawCentredString(centre, y, line)
        y -= 9 * mm
    pdf.drawCentredString(centre, y, face.earns)
    y -= 6 * mm
    qr.draw_pdf(pdf, face.url, centre - QR_SIZE / 2, y - QR_SIZE, QR_SIZE)
    y -= QR_SIZE + 12 * mm
    pdf.setFont(font, 22)
    pdf.drawCentredString(centre, y, "请用手机扫码签到（需先登录）")
    y -= 10 * mm
    pdf.setFont(font, 13)
    pdf.drawCentredString(centre, y, "没有智能手机的，请到门口出示户卡或手机兑换码，由工作人员登记")
    pdf.drawCentredString(centre, 15 * mm, f"{face.once}；活动结束后统一登记积分并公示")
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _fit(pdf: canvas.Canvas, text: str, font: str, size: float, room: float) -> float:
    """The largest size up to `size` at which `text` fits in `room` points."""
    while size > 14 and pdf.stringWidth(text, font, size) > room:
        size -= 2
    return size
