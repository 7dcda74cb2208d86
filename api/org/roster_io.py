"""Read a roster file (.xlsx or .csv) into (row number, {column key: value}) pairs.

A roster is small (a village has a few thousand residents), and an upload may be hostile: an
.xlsx is a zip whose 300 KiB can expand to gigabytes of XML. So the zip's declared sizes are
checked before any parsing (zipfile never inflates a member past its declared size), rows are
streamed and counted as they come, columns and cell lengths are bounded, and the problems
echoed back are capped (points.org.roster.MAX_PROBLEMS_SHOWN).
"""

from __future__ import annotations

import csv
import io
import zipfile

from points.org.roster import COLUMNS, DROPPED_HEADERS, Problem, RosterProblemsError

MAX_ROWS = 20_000  # data rows, blank ones included
MAX_COLUMNS = 40
MAX_CELL_CHARS = 200
MAX_UNCOMPRESSED = 50 * 1024 * 1024  # all members of the .xlsx, inflated
MAX_ZIP_MEMBERS = 200
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

    _check_zip(data)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise RosterProblemsError([Problem(1, "文件", "无法读取该 Excel 文件")]) from exc
    try:
        sheet = book.worksheets[0]
        rows = _bounded(sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True))
    except RosterProblemsError:
        raise
    except Exception as exc:  # a member that is not the XML it claims to be
        raise RosterProblemsError([Problem(1, "文件", "无法读取该 Excel 文件")]) from exc
    finally:
        book.close()
    # Phone numbers typed as numbers come back as int: show them as text, as the user typed.
    return [
        [str(c) if isinstance(c, int) and not isinstance(c, bool) and c > 10**9 else c for c in r]
        for r in rows
    ]


def _check_zip(data: bytes) -> None:
    """Refuse an .xlsx whose members would inflate past MAX_UNCOMPRESSED, before parsing."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise RosterProblemsError([Problem(1, "文件", "无法读取该 Excel 文件")]) from exc
    inflated = sum(m.file_size for m in members)
    if len(members) > MAX_ZIP_MEMBERS or inflated > MAX_UNCOMPRESSED:
        raise RosterProblemsError(
            [Problem(1, "文件", "文件解压后过大，不像花名册；请只保留花名册一张表后重新保存")]
        )


def _bounded(rows) -> list[list]:
    """Take rows from a stream, refusing more than MAX_ROWS, wider than MAX_COLUMNS, or a
    cell longer than MAX_CELL_CHARS (a roster's cells are names, numbers and phones)."""
    table: list[list] = []
    problems: list[Problem] = []
    for n, row in enumerate(rows, start=1):
        if n > MAX_ROWS + 1:
            raise RosterProblemsError([Problem(1, "文件", f"一次最多导入 {MAX_ROWS} 行")])
        cells = list(row)
        if len(cells) > MAX_COLUMNS and any(c not in (None, "") for c in cells[MAX_COLUMNS:]):
            raise RosterProblemsError([Problem(n, "文件", f"列数超过 {MAX_COLUMNS} 列")])
        cells = cells[:MAX_COLUMNS]
        for i, value in enumerate(cells):
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                problems.append(Problem(n, f"第 {i + 1} 列", f"内容超过 {MAX_CELL_CHARS} 字"))
                cells[i] = value[:MAX_CELL_CHARS]
        table.append(cells)
    if problems:
        raise RosterProblemsError(problems)
    return table


def _csv_rows(data: bytes) -> list[list]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterProblemsError([Problem(1, "文件", "无法识别文件编码（请用 UTF-8 或 GBK）")])
    try:
        return _bounded(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # a field longer than the csv module's own limit, a stray NUL
        raise RosterProblemsError([Problem(1, "文件", "无法读取该 CSV 文件")]) from exc


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
