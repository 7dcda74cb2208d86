"""Period statements as files: an xlsx 台账 of every household, and a printable PDF, one page each.

Both carry the ledger head (seq:hash) they were read at: anyone can later run
`points verify --head SEQ:HASH` to check that the chain still reaches that entry unchanged.
The PDF embeds a subset of Noto Sans SC (api/web/pdf_fonts.py): it reads the same everywhere.
"""

from __future__ import annotations

import io
from pathlib import Path

from api.web.pdf_fonts import cjk_font
from points.cycles.statements import HouseholdStatement, PeriodStatements
from points.periods import LOCAL_TZ

POLICY_TEXT = {"reset": "期末清零", "carry": "结转下期", "expire_after_n": "逾期清零"}


def _head_text(stmts: PeriodStatements) -> str:
    seq, hash_ = stmts.head
    return f"{seq}:{hash_}"


def _closed_text(stmts: PeriodStatements) -> str:
    return stmts.closed_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def write_xlsx(stmts: PeriodStatements, honours: dict[int, list[str]] | None = None) -> bytes:
    """Return an xlsx workbook: one row per household, the head and period above the table.
    `honours` ({household id: labels}) fills the last column, 本户荣誉, as on the PDF."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "期末对账单"
    ws.append([f"{stmts.village_name} {stmts.scheme_name} {stmts.period} 期末对账单"])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(
        [
            "周期",
            f"{stmts.starts_on:%Y-%m-%d} 至 {stmts.ends_on:%Y-%m-%d}",
            "结算时间",
            _closed_text(stmts),
            "结算方式",
            POLICY_TEXT.get(stmts.close_policy, stmts.close_policy),
        ]
    )
    ws.append(
        ["账本链头", _head_text(stmts), "核对命令", f"points verify --head {_head_text(stmts)}"]
    )
    ws.append([])
    headers = ["户号", "户主", "小组", "期初余额"]
    headers += [f"加分·{c}" for c in stmts.categories]
    headers += ["加分合计", "扣分", "兑换", "到期清零", "其他", "期末余额", "本期得分", "排名"]
    headers += ["本户荣誉"]
    honours = honours or {}
    ws.append(headers)
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
    for line in stmts.lines:
        ws.append(
            [line.number, line.head_name, line.group_name, line.opening]
            + [line.awards.get(c, 0) for c in stmts.categories]
            + [
                line.awards_total,
                line.deductions,
                line.redemptions,
                line.expired,
                line.other,
                line.closing,
                line.score,
                line.rank,
                "；".join(honours.get(line.household_id, [])),
            ]
        )
    ws.freeze_panes = ws.cell(row=header_row + 1, column=4)
    for i, header in enumerate(headers, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, 2 * len(header) + 2)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def write_pdf(stmts: PeriodStatements, honours: dict[int, list[str]] | None = None) -> bytes:
    """Return an A4 PDF in large type, one page per household, the ledger head on each page;
    `honours` ({household id: labels}) adds each household's published honours."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    honours = honours or {}
    font = cjk_font(
        Path(__file__).read_text(encoding="utf-8"), repr(stmts), _head_text(stmts), repr(honours)
    )
    # Large type for elderly readers; CJK wrapping breaks lines between characters.
    title = ParagraphStyle("title", fontName=font, fontSize=22, leading=32, wordWrap="CJK")
    body = ParagraphStyle("body", fontName=font, fontSize=15, leading=24, wordWrap="CJK")
    head = _head_text(stmts)

    def footer(canvas, _doc):
        # The head in small type on one line, so it can be copied off the page whole.
        canvas.saveState()
        canvas.setFont(font, 10)
        canvas.drawString(18 * mm, 18 * mm, "账本链头（可用 points verify --head 核对）：")
        canvas.setFont(font, 8)
        canvas.drawString(18 * mm, 13 * mm, head)
        canvas.restoreState()

    story = []
    for i, line in enumerate(stmts.lines):
        if i:
            story.append(PageBreak())
        story += _household_page(stmts, line, title, body)
        table = Table(_figures(stmts, line), colWidths=[95 * mm, 55 * mm])
        table.setStyle(
            TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), font, 15),
                    ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                    ("TOPPADDING", (0, 0), (-1, -1), 5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                ]
            )
        )
        story += [table, Spacer(1, 6 * mm)]
        story.append(
            Paragraph(
                f"本期得分 {line.score} 分，在全村 {stmts.ranked} 户中排第 {line.rank} 名。"
                "得分按本期加分减扣分计算，兑换和清零不影响得分。",
                body,
            )
        )
        if honours.get(line.household_id):
            story.append(Paragraph("本户荣誉：" + "；".join(honours[line.household_id]), body))
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=28 * mm,
        title=f"{stmts.village_name} {stmts.period} 期末对账单",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _household_page(stmts: PeriodStatements, line: HouseholdStatement, title, body) -> list:
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    return [
        Paragraph(f"{stmts.village_name} 积分期末对账单", title),
        Paragraph(f"{stmts.scheme_name}　{stmts.period} 期", body),
        Paragraph(f"户号：{line.number}　户主：{line.head_name or '—'}　{line.group_name}", body),
        Paragraph(f"周期：{_date(stmts.starts_on)} 至 {_date(stmts.ends_on)}", body),
        Paragraph(
            f"结算：{_closed_text(stmts)}（{POLICY_TEXT.get(stmts.close_policy, '')}）", body
        ),
        Spacer(1, 4 * mm),
    ]


def _date(d) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _figures(stmts: PeriodStatements, line: HouseholdStatement) -> list[list[str]]:
    rows = [["期初余额", _points(line.opening, signed=False)]]
    rows += [[f"加分：{c}", _points(v)] for c, v in line.awards.items()]
    if not line.awards:
        rows.append(["加分", _points(0)])
    rows += [
        ["扣分", _points(line.deductions)],
        ["兑换", _points(line.redemptions)],
        ["到期清零", _points(line.expired)],
    ]
    if line.other:
        rows.append(["其他调整", _points(line.other)])
    rows.append(["期末余额", _points(line.closing, signed=False)])
    return rows


def _points(value: int, *, signed: bool = True) -> str:
    return f"{value:+d} 分" if signed and value else f"{value} 分"
