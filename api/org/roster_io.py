"""Read a roster file (.xlsx or .csv) into (row number, {column key: value}) pairs."""

from __future__ import annotations

import csv
import io

from points.org.roster import COLUMNS, DROPPED_HEADERS, Problem, RosterProblemsError

MAX_ROWS = 50_000
_BY_HEADER = {header.rstrip("*"): key for key, header in COLUMNS.items()}


def read_roster(filename: str, data: bytes) -> list[tuple[int, dict]]:
    """Parse the first sheet (or the CSV); raise RosterProblemsError on unreadable files."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        table = _xlsx_rows(data)
    elif name.endswith(".csv"):
        table = _csv_rows(data)
    else:
        raise RosterProblemsError([Problem(1, "文件", "只支持 .xlsx 或 .csv 文件")])
    if not table:
        raise RosterProblemsError([Problem(1, "表头", "文件是空的")])
    header = [str(h or "").strip().rstrip("*") for h in table[0]]
    unknown = [h for h in header if h and h not in _BY_HEADER and h not in DROPPED_HEADERS]
    missing = [
        COLUMNS[k] for k in ("number", "group", "name") if COLUMNS[k].rstrip("*") not in header
    ]
    problems = [Problem(1, h, "无法识别的列名") for h in unknown]
    problems += [Problem(1, h, "缺少必需的列") for h in missing]
    if problems:
        raise RosterProblemsError(problems)
    if len(table) - 1 > MAX_ROWS:
        raise RosterProblemsError([Problem(1, "文件", f"一次最多导入 {MAX_ROWS} 行")])
    rows = []
    for n, cells in enumerate(table[1:], start=2):
        if not any(str(c or "").strip() for c in cells):
            continue  # blank lines between blocks are common in hand-made sheets
        row = {}
        for header_name, value in zip(header, cells, strict=False):
            key = _BY_HEADER.get(header_name)
            if key:
                row[key] = value.strip() if isinstance(value, str) else value
        rows.append((n, row))
    return rows


def _xlsx_rows(data: bytes) -> list[list]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise RosterProblemsError([Problem(1, "文件", "无法读取该 Excel 文件")]) from exc
    sheet = book.worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    book.close()
    # Phone numbers typed as numbers come back as int: show them as text, as the user typed.
    return [
        [str(c) if isinstance(c, int) and not isinstance(c, bool) and c > 10**9 else c for c in r]
        for r in rows
    ]


def _csv_rows(data: bytes) -> list[list]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterProblemsError([Problem(1, "文件", "无法识别文件编码（请用 UTF-8 或 GBK）")])
    return [row for row in csv.reader(io.StringIO(text))]


def write_roster_xlsx(headers: dict[str, str], rows: list[dict], *, title: str) -> bytes:
    """Write a roster sheet: the template (no rows, one example) or the current roster."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(list(headers.values()))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([row.get(key, "") for key in headers])
    for column, width in zip("ABCDEFGHIJ", (10, 10, 14, 10, 6, 14, 6, 14, 10, 8), strict=False):
        sheet.column_dimensions[column].width = width
    # Phones and 户号 are text: a number format would drop leading zeros and show 1.38E+10.
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


TEMPLATE_ROWS = [
    {
        "number": "001",
        "group": "第一组",
        "door_plate": "东街1号",
        "name": "张三",
        "is_head": "是",
        "phone": "13800000001",
        "is_party_member": "否",
        "party_branch": "",
        "opening": 0,
    },
    {"number": "001", "group": "第一组", "name": "李四", "is_head": "否", "is_party_member": "否"},
]
