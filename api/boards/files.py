"""A published board on paper: an A4/A3 poster (PDF) and an Excel sheet for the 台账.

Both are drawn from the board's frozen snapshot, never from live rows, so they show exactly
what was published: the names as the privacy mode then allowed, and the ledger head
(seq:hash) at publication, which anyone can hold against `points verify --head`.
"""

from __future__ import annotations

import io
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from reportlab.lib.pagesizes import A3, A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas

from api.web.pdf_fonts import cjk_font
from points import boards
from points.models import Village
from points.models.boards import Board


def _line(entry: dict) -> str:
    parts = []
    if entry.get("rank"):
        parts.append(f"第{entry['rank']}名")
    parts.append(entry["who"])
    if entry["who"] != entry["group"]:
        parts.append(f"（{entry['group']}）")
    if entry.get("stars"):
        parts.append(" " + "★" * entry["stars"])
    parts.append("  " + entry["text"])
    if entry["section"] == "violation" and entry.get("month"):
        parts.append(f"（{entry['month']}）")
    return "".join(parts)


def head_text(board: Board) -> str:
    """Return the printed ledger head: seq:hash."""
    return f"{board.head_seq}:{board.head_hash}"


def poster_pdf(village: Village, board: Board, *, size: str = "a4") -> bytes:
    """Return the board as a poster PDF in large type, with the ledger head at the foot."""
    view = boards.public_view(board)
    # Every character this module prints plus the board's own text: the embedded subset.
    privacy = boards.privacy_label(board.privacy_mode)
    groups = boards.sections(view)
    titles = "".join(g["title"] for g in groups)
    font = cjk_font(
        Path(__file__).read_text(encoding="utf-8"), str(view), titles, village.name, privacy
    )
    page = A3 if size == "a3" else A4
    scale = 1.41 if size == "a3" else 1.0
    width, height = page
    margin = 15 * mm * scale
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=page)
    pdf.setTitle(f"{village.name} {board.month} 红黑榜")
    y = height - margin

    def room_for(*pts: float) -> None:
        """Start a new page unless lines of these sizes still fit on this one."""
        nonlocal y
        if y - sum(pt * scale * 1.35 for pt in pts) < margin + 40 * scale:
            pdf.showPage()
            y = height - margin

    def text(s: str, pt: float, *, center=False, color=(0, 0, 0)):
        nonlocal y
        size_pt = pt * scale
        room_for(pt)
        pdf.setFont(font, size_pt)
        pdf.setFillColorRGB(*color)
        # Wrap by width: CJK text has no spaces, so cut by measured width.
        room = width - 2 * margin
        while s:
            n = len(s)
            while n > 1 and pdfmetrics.stringWidth(s[:n], font, size_pt) > room:
                n -= 1
            chunk, s = s[:n], s[n:]
            y -= size_pt * 1.35
            if center:
                pdf.drawCentredString(width / 2, y, chunk)
            else:
                pdf.drawString(margin, y, chunk)

    year, month = board.month.split("-")
    text(f"{village.name}", 30, center=True)
    text(f"{year}年{int(month)}月 红黑榜", 30, center=True, color=(0.75, 0, 0))
    if view["correction"]:
        text(f"更正榜：更正第 {view['correction']['of']} 号榜，{view['correction']['reason']}", 14)
    # The board's sections, good deeds and violations grouped by their frozen category.
    for group in groups:
        y -= 6 * scale
        text(group["title"], 22, color=(0.75, 0, 0) if group["red"] else (0, 0, 0))
        for entry in group["entries"]:
            text(_line(entry), 16)
    y -= 8 * scale
    text(f"排名规则：{view['tie_rule']}", 11)
    text(
        f"公布方式：{privacy}。对本榜有异议的，请向村务监督委员会申诉。",
        11,
    )
    if board.published_at:
        from points.periods import LOCAL_TZ

        when = board.published_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
        text(f"发布时间：{when}", 11)
    # The code stays with its label: a reader checks them together.
    room_for(11, 10, 10)
    text("账本校验码（发布时的账本末笔 序号:哈希）：", 11)
    text(head_text(board), 10)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def board_xlsx(village: Village, board: Board) -> bytes:
    """Return the board as an .xlsx sheet: one row per entry, the head in the header."""
    view = boards.public_view(board)
    book = Workbook()
    sheet = book.active
    sheet.title = board.month
    sheet.append([f"{village.name} {board.month} 红黑榜"])
    sheet["A1"].font = Font(size=16, bold=True)
    sheet.append(["账本校验码", head_text(board)])
    sheet.append(["排名规则", view["tie_rule"]])
    sheet.append(["公布方式", boards.privacy_label(board.privacy_mode)])
    sheet.append([])
    sheet.append(["榜别", "类别", "名次", "对象", "小组", "得分", "星级", "事项", "入账月份"])
    # Row by row in the board's order: the 类别 column names the section and, for good deeds
    # and violations, the category the village's catalog gave their rule (frozen with the board).
    for group, e in ((g, e) for g in boards.sections(view) for e in g["entries"]):
        sheet.append(
            [
                "红榜" if e["kind"] == "red" else "黑榜",
                group["title"],
                e.get("rank"),
                e["who"],
                e["group"],
                e.get("score"),
                e.get("stars"),
                e["text"],
                e.get("month"),
            ]
        )
    for column, width in zip("ABCDEFGHI", (6, 20, 6, 16, 10, 8, 6, 40, 10), strict=True):
        sheet.column_dimensions[column].width = width
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
