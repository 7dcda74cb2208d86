"""The periods page: each scheme's periods with their status, what the next close will do,
period statements (PDF/xlsx, the village or one household) and the monthly 台账 (xlsx)."""

from __future__ import annotations

import io

from flask import Blueprint, Response, render_template, request

from api.cycles.statements import write_pdf, write_xlsx
from api.db import db, writes_on_get
from api.web.helpers import page_audit, page_village, render_error, signed_in
from points import ledger
from points.catalog.settings import CLOSE_POLICY_TEXT
from points.cycles.closing import list_periods
from points.cycles.preview import next_close
from points.cycles.register import month_register
from points.cycles.statements import period_statements
from points.db import utcnow
from points.ledger import statements
from points.models.org import Role
from points.periods import local_date, month_key

bp = Blueprint("cycle_pages", __name__, template_folder="templates")
STATUS_TEXT = {"open": "进行中", "closed": "已结账", "due": "到期待结账"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(data: bytes, mimetype: str, name: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    return response


@bp.get("/v/<code>/periods")
@signed_in
def periods(code):
    """Each scheme's periods, the next close previewed, and the downloads."""
    village = page_village(code, Role.ADMIN)
    s, now = db(), utcnow()
    schemes = statements.list_schemes(s, village=village)
    return render_template(
        "staff/periods.html",
        village=village,
        periods=list_periods(s, village_id=village.id, now=now),
        previews=[next_close(s, scheme=sc, now=now) for sc in schemes],
        household_schemes=[sc for sc in schemes if sc.subject_kind == "household"],
        status_text=STATUS_TEXT,
        policies=CLOSE_POLICY_TEXT,
        month=month_key(local_date(now)),
    )


@bp.get("/v/<code>/periods/statement")
@writes_on_get  # the download is recorded in the audit log
@signed_in
def statement(code):
    """Period statements (期末对账单) of a closed period, as PDF or xlsx."""
    village = page_village(code, Role.ADMIN)
    args = request.args
    kind = args.get("format", "pdf")
    if kind not in ("pdf", "xlsx"):
        return render_error(400, "格式只能是 PDF 或 Excel")
    household = args.get("household", "").strip() or None
    stmts = period_statements(
        db(),
        village=village,
        period=args.get("period", ""),
        scheme_code=args.get("scheme", "household"),
        household_number=household,
    )
    page_audit(
        village,
        "statement.download",
        village,
        f"下载 {stmts.period} 期末对账单（{household or '全村'}，{kind}）",
        "village",
    )
    name = f"{village.code}-{stmts.period}{'-' + household if household else ''}.{kind}"
    from points.honours import honour_labels

    labels = honour_labels(db(), village=village)
    if kind == "pdf":
        return _download(write_pdf(stmts, labels), "application/pdf", name)
    return _download(write_xlsx(stmts, labels), XLSX, name)


@bp.get("/v/<code>/periods/register.xlsx")
@writes_on_get  # the download is recorded in the audit log
@signed_in
def register(code):
    """The monthly 台账: every ledger entry written in the month, as an Excel sheet."""
    from openpyxl import Workbook

    from api.web.helpers import localtime

    village = page_village(code, Role.ADMIN)
    month = request.args.get("month") or month_key(local_date(utcnow()))
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
        return render_error(400, "月份格式应为 2026-11")
    lines = month_register(db(), village=village, month=month)
    book = Workbook()
    sheet = book.active
    sheet.title = f"{month} 台账"
    sheet.append(
        ["序号", "时间", "类型", "方案", "户号", "姓名", "类别", "摘要", "得分", "积分变动"]
    )
    for line in lines:
        sheet.append(
            [
                line.seq,
                localtime(line.created_at),
                line.kind,
                line.scheme,
                line.household,
                line.resident,
                line.category,
                line.memo,
                line.score_delta,
                line.points,
            ]
        )
    seq, head = ledger.chain_head(db(), village.id)
    sheet.append([])
    sheet.append([f"账本链头 {seq}:{head}（可用 points verify --head 核对）"])
    out = io.BytesIO()
    book.save(out)
    page_audit(
        village, "register.download", village, f"下载 {month} 台账 {len(lines)} 笔", "village"
    )
    return _download(out.getvalue(), XLSX, f"{village.code}-{month}-register.xlsx")
