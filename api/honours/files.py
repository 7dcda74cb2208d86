"""Honours on paper and in the town's 台账: the door plaque (A5/A6, with a QR to the
household's public honour record), the certificate (奖状, A4), the poster of a list or of the
道德模范 roll (A4), and the town's Excel sheet of counts.

All of them are drawn from published snapshots, never from live rows: the names are as the
privacy mode allowed at publication, and the poster carries the ledger head (seq:hash).
"""

from __future__ import annotations

import io
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from reportlab.lib.pagesizes import A4, A5, A6, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas

from api.web import qr as qr_codes
from api.web.pdf_fonts import cjk_font
from points.honours import STARS, honour_label, kind_text

RED = (0.72, 0.05, 0.05)
GOLD = (0.75, 0.55, 0.05)
_SOURCE = Path(__file__).read_text(encoding="utf-8")


def _fit(pdf, font: str, text: str, width: float, pt: float) -> float:
    """Return the largest size up to `pt` at which `text` fits in `width`."""
    while pt > 6 and pdfmetrics.stringWidth(text, font, pt) > width:
        pt -= 1
    return pt


def _when(year: int | str) -> str:
    """'2025' → '2025年度'; a period already said ('2025年第三季度') unchanged."""
    return f"{year}年度" if isinstance(year, int) or str(year).isdigit() else str(year)


def plaque_pdf(
    village_name: str, year: int | str, kind: str, entry: dict, url: str, size="a6"
) -> bytes:
    """Return a door plaque: the honour in large type, the holder, and a QR to `url`; `year`
    is the list's year or its period as said (honours.when_text)."""
    page = landscape(A5 if size == "a5" else A6)
    scale = 1.41 if size == "a5" else 1.0
    width, height = page
    name = honour_label(kind, entry)
    font = cjk_font(_SOURCE, village_name, entry["who"], name, _when(year))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=page)
    pdf.setTitle(f"{village_name} {year} {name}")
    margin = 6 * mm * scale
    pdf.setStrokeColorRGB(*RED)
    pdf.setLineWidth(3 * scale)
    pdf.rect(margin / 2, margin / 2, width - margin, height - margin)
    qr = 36 * mm * scale
    text_w = width - 3 * margin - qr
    pdf.setFillColorRGB(*RED)
    title_pt = _fit(pdf, font, name, text_w, 30 * scale)
    pdf.setFont(font, title_pt)
    pdf.drawString(margin * 1.5, height - margin - title_pt * 1.4, name)
    if entry.get("stars") and entry["title"] == STARS:
        pdf.setFillColorRGB(*GOLD)
        pdf.setFont(font, 26 * scale)
        pdf.drawString(
            margin * 1.5, height - margin - title_pt * 1.4 - 34 * scale, "★" * entry["stars"]
        )
    pdf.setFillColorRGB(0, 0, 0)
    pdf.setFont(font, 13 * scale)
    pdf.drawString(margin * 1.5, margin * 1.5 + 44 * scale, f"{_when(year)} · {entry['who']}")
    pdf.setFont(font, 11 * scale)
    pdf.drawString(margin * 1.5, margin * 1.5 + 24 * scale, f"{village_name}村民委员会 授")
    pdf.setFont(font, 8 * scale)
    pdf.drawString(margin * 1.5, margin * 1.5 + 6 * scale, "扫码查看本户荣誉档案")
    qr_codes.draw_pdf(pdf, url, width - margin * 1.5 - qr, (height - qr) / 2, qr)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def certificate_pdf(
    village_name: str, year: int | str, kind: str, entry: dict, url: str, when: str
) -> bytes:
    """Return a 奖状 (A4 landscape): who, what for, the village's name and the date."""
    page = landscape(A4)
    width, height = page
    name = honour_label(kind, entry)
    body = f"{entry['who']}：在{_when(year)}{kind_text(kind)}评选中被评为“{name}”，特发此证，以资鼓励。"
    signer = f"{village_name}村民委员会"
    font = cjk_font(_SOURCE, village_name, body, signer, when, entry.get("text") or "")
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=page)
    pdf.setTitle(f"{village_name} {year} {name} 荣誉证书")
    pdf.setStrokeColorRGB(*GOLD)
    pdf.setLineWidth(6)
    pdf.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    pdf.setFillColorRGB(*RED)
    pdf.setFont(font, 54)
    pdf.drawCentredString(width / 2, height - 48 * mm, "荣 誉 证 书")
    pdf.setFillColorRGB(0, 0, 0)
    y = height - 80 * mm
    room = width - 70 * mm
    text = body
    while text:
        n = len(text)
        while n > 1 and pdfmetrics.stringWidth(text[:n], font, 22) > room:
            n -= 1
        pdf.setFont(font, 22)
        pdf.drawString(35 * mm, y, text[:n])
        text, y = text[n:], y - 12 * mm
    if entry.get("text") and entry["title"] != STARS:
        pdf.setFont(font, 13)
        pdf.drawString(35 * mm, y, f"事迹：{entry['text'][:60]}")
    pdf.setFont(font, 18)
    pdf.drawRightString(width - 35 * mm, 40 * mm, signer)
    pdf.drawRightString(width - 35 * mm, 30 * mm, when)
    qr_codes.draw_pdf(pdf, url, 25 * mm, 22 * mm, 28 * mm)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def poster_pdf(
    village_name: str, title: str, groups: list[tuple[str, list[str]]], foot: list[str]
) -> bytes:
    """Return an A4 poster: a title, groups of lines under headings, and foot lines."""
    width, height = A4
    margin = 15 * mm
    font = cjk_font(_SOURCE, village_name, title, str(groups), "".join(foot))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setTitle(f"{village_name} {title}")
    y = height - margin

    def line(s: str, pt: float, color=(0, 0, 0), center=False):
        nonlocal y
        if y - pt < margin:
            pdf.showPage()
            y = height - margin
        pdf.setFillColorRGB(*color)
        pt = _fit(pdf, font, s, width - 2 * margin, pt)
        pdf.setFont(font, pt)
        y -= pt * 1.45
        if center:
            pdf.drawCentredString(width / 2, y, s)
        else:
            pdf.drawString(margin, y, s)

    line(village_name, 30, center=True)
    line(title, 30, RED, center=True)
    for heading, rows in groups:
        y -= 8
        line(heading, 22, RED)
        for row in rows:
            line(row, 17)
    y -= 10
    for s in foot:
        line(s, 10)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def list_poster(village_name: str, view: dict) -> bytes:
    """Return a published list as a poster, grouped by honour, with the ledger head."""
    groups: dict[str, list[str]] = {}
    for e in view["entries"]:
        stars = f" {'★' * e['stars']}" if e.get("stars") and e["title"] == STARS else ""
        groups.setdefault(honour_label(view["kind"], e), []).append(
            f"{e['who']}（{e['group']}）{stars}"
        )
    foot = []
    if view.get("correction"):
        foot.append(f"更正：{view['correction']['reason']}")
    if view.get("rule"):
        foot.append(view["rule"])
    foot.append(f"账本校验码（发布时的账本末笔 序号:哈希）：{view['head_seq']}:{view['head_hash']}")
    title = f"{view.get('when') or _when(view['year'])} {kind_text(view['kind'])} 光荣榜"
    return poster_pdf(village_name, title, sorted(groups.items(), reverse=True), foot)


def roll_poster(village_name: str, roll: list[dict]) -> bytes:
    """Return the 道德模范 roll as a poster for the village board, newest year first."""
    groups = [
        (f"{r['year']}年度", [f"{e['who']}（{e['group']}）：{e['text']}" for e in r["entries"]])
        for r in roll
    ]
    return poster_pdf(village_name, "道德模范榜", groups, ["向道德模范学习，崇德向善，见贤思齐。"])


def town_xlsx(town: str, year: int, rows: list[dict]) -> bytes:
    """Return the town's honour counts per village for a year (no names)."""
    book = Workbook()
    sheet = book.active
    sheet.title = str(year)
    sheet.append([f"{town} {year}年度 评星与表彰汇总（只含数量）"])
    sheet["A1"].font = Font(size=14, bold=True)
    stars = [f"{n}星文明户" for n in range(1, 6)] + [f"{n}星党员" for n in range(1, 6)]
    titles = ["优秀群众", "优秀党员", "最美家庭", "道德模范"]
    sheet.append(["村代码", "村名", *stars, *titles])
    for r in rows:
        sheet.append(
            [r["code"], r["name"], *r["stars"][1:], *r["party_stars"][1:]]
            + [r["titles"].get(t, 0) for t in titles]
        )
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
