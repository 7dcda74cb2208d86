"""Catalogs as files: an Excel workbook with Chinese headers for cadres, YAML (or JSON) for diffs.

Reading never stops at the first mistake: every problem of a file comes back at once, each
naming its sheet, row and column (or its YAML line and key), and nothing is written. Validation
itself is `points.catalog.check_rules`; this module only turns cells into rules and back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from points.catalog import (
    BOOL_TEXT,
    COLUMNS,
    DEFAULT_CATEGORIES,
    FIELD_TEXT,
    RULE_FIELDS,
    STATUS_TEXT,
    Category,
    categories_of,
    category_to_dict,
    check_categories,
    check_rules,
    display_value,
    flatten_rule,
    rules_of,
)
from points.catalog.rules import (
    MAX_NOTICE_DAYS,
    ROLE_TEXT,
    SUBJECT_TEXT,
    UNIT_TEXT,
    WINDOW_TEXT,
    AutoPeriod,
    Review,
    Rule,
    Unit,
    Window,
    rule_to_dict,
)
from points.errors import CatalogProblemsError
from points.models import CatalogVersion, Scheme, Village
from points.models.catalog import CatalogStatus

SHEET = "积分标准"
CATEGORY_SHEET = "类别"
# The categories sheet: one category a row, in board and report order.
CATEGORY_COLUMNS = (("name", "类别"), ("description", "说明"), ("black", "扣分上黑榜"))
CATEGORY_HEADERS = {header: key for key, header in CATEGORY_COLUMNS}
CATEGORY_LETTERS = {key: get_column_letter(n) for n, (key, _) in enumerate(CATEGORY_COLUMNS, 1)}
HELP_SHEET = "说明"
INFO_SHEET = "版本信息"
HEADER_KEYS = {header: key for key, header in COLUMNS}
LETTERS = {key: get_column_letter(n) for n, (key, _) in enumerate(COLUMNS, start=1)}
# Columns whose every cell must be filled; the rest may stay empty.
REQUIRED = (
    "code",
    "name",
    "category",
    "sign",
    "unit",
    "evidence_required",
    "review",
    "recorder_roles",
    "subjects",
    "honourable",
)
INT_KEYS = ("points", "min_points", "max_points", "caps.day", "caps.month", "caps.period")
INT_KEYS += ("caps.year", "caps.ever", "review_threshold", "notice_days", "repeat_multiplier")
INT_KEYS += ("repeat_points", "auto_months", "auto_min_count", "campaign_multiplier")
DATE_KEYS = ("campaign_from", "campaign_to")
# Cell text -> engine value. Engine spellings are accepted too, so a sheet filled by a script or
# by someone who read the YAML still imports.
SIGN_VALUES = {"加分": 1, "扣分": -1, "+": 1, "-": -1, "+1": 1, "-1": -1, "1": 1}
UNIT_VALUES = {text: str(unit) for unit, text in UNIT_TEXT.items()} | {str(u): str(u) for u in Unit}
REVIEW_VALUES = {
    "必须": "always",
    "无需": "never",
    "达到阈值": "threshold",
    "超过阈值": "threshold",
}
REVIEW_VALUES |= {str(r): str(r) for r in Review}
BOOL_VALUES = {"是": True, "否": False}
SPAN_VALUES = {"月": "month", "周期": "period", "年": "year"}
SPAN_VALUES |= {str(w): str(w) for w in (Window.month, Window.period, Window.year)}
AUTO_VALUES = {"月": "month", "季度": "quarter", "季": "quarter", "年": "year"}
AUTO_VALUES |= {str(a): str(a) for a in AutoPeriod}
ROLE_VALUES = {text: role for role, text in ROLE_TEXT.items()} | {r: r for r in ROLE_TEXT}
SUBJECT_VALUES = {text: kind for kind, text in SUBJECT_TEXT.items()} | {s: s for s in SUBJECT_TEXT}
LIST_SEPARATORS = re.compile(r"[、,，;；/\s]+")
HELP = {
    "code": "必填。1–4 个大写字母加 1–4 位数字，如 XIAO-01；同一版本内不能重复",
    "name": "必填。项目名称，张榜和台账上显示",
    "category": "必填。须是“类别”工作表中列出的类别之一（默认德治、自治、法治、党建）",
    "subcategory": "选填。如积孝、积善、积信、积勤、积俭、积美",
    "description": "选填。怎样才算、由谁核实",
    "sign": "必填。加分或扣分",
    "points": "固定分值，正整数（扣分项也填正数）；与最低分、最高分二选一",
    "min_points": "分值区间的下限；填区间时由登记人酌定并写明理由",
    "max_points": "分值区间的上限",
    "unit": "必填。次、小时或天：分值按每次、每小时或每天计",
    "caps.day": "选填。同一户（人）本项每天最多得（扣）的分数",
    "caps.month": "选填。同一户（人）本项每月最多得（扣）的分数",
    "caps.period": "选填。同一户（人）本项每个积分周期（月、季或年，见积分方案）最多得（扣）的分数",
    "caps.year": "选填。同一户（人）本项每年最多得（扣）的分数",
    "evidence_required": "必填。是或否：登记时须附照片、签到表等证明材料",
    "review": "必填。必须、无需或达到阈值（本次分值达到审核阈值时交评议小组审核）；扣分一律审核",
    "review_threshold": "审核为“达到阈值”时必填的分值线，其他情况留空",
    "recorder_roles": "必填。" + "、".join(ROLE_TEXT.values()) + " 中的一个或多个，用顿号分隔",
    "subjects": "必填。" + "、".join(SUBJECT_TEXT.values()) + " 中的一个或多个，用顿号分隔",
    "honourable": "必填。是或否：本项得分可上红榜（扣分项填否）",
    "caps.ever": "选填。同一户（人）本项累计最多得（扣）的分数，不按时间清零",
    "once": "选填。是或否：每户（人）只能登记一次（一次性奖励），留空为否",
    "notice_days": f"选填。本项的公示天数（0–{MAX_NOTICE_DAYS}），留空按积分方案；"
    "填 0 且无需审核的项目登记即入账（如签到类）",
    "repeat_window": "选填，仅扣分项。月、周期或年：在此周期内再犯加重扣分",
    "repeat_multiplier": "选填。周期内第二次按几倍扣分（2 以上的整数）",
    "repeat_points": "选填。周期内第三次起每次扣多少分",
    "veto": "选填，仅扣分项。一票否决：月、周期或年——入账后该户（人）在此范围内不能上红榜、不评星级"
    "（已得积分照常兑换）",
    "auto": "选填，仅加分项。月、季度或年：由系统在每个月（季度、年）结束后按条件自动评定，"
    "不能手工登记；须填固定分值",
    "auto_months": "选填。条件回看的月数（连续 N 个月），留空为评定周期本身",
    "auto_min_count": "选填。留空：期间内没有所列项目的扣分（无违规）；填 K：期间内所列项目得分满 K 次",
    "auto_watch": "选填。条件所看的类别或项目编码，用顿号分隔，留空为全部；"
    "不得以依法信访、举报、监督为条件",
    "campaign_name": "选填。活动名称，如宣传月；与活动开始、活动结束一起填写",
    "campaign_from": "选填。活动开始日期，如 2026-11-01（含当天）",
    "campaign_to": "选填。活动结束日期，如 2026-11-30（含当天）",
    "campaign_multiplier": "选填。活动期间按几倍计分（2 以上）；留空表示本项只在活动期间有效",
}
DROPDOWNS = {
    "sign": ("加分", "扣分"),
    "unit": tuple(UNIT_TEXT.values()),
    "evidence_required": ("是", "否"),
    "review": ("必须", "无需", "达到阈值"),
    "honourable": ("是", "否"),
    "once": ("是", "否"),
    "repeat_window": ("月", "周期", "年"),
    "veto": ("月", "周期", "年"),
    "auto": ("月", "季度", "年"),
}
INFO_FIELDS = (
    ("village", "村庄代码"),
    ("village_name", "村庄名称"),
    ("scheme", "积分方案"),
    ("scheme_name", "方案名称"),
    ("version", "版本号"),
    ("status", "状态"),
    ("title", "标题"),
    ("adopted_on", "通过日期"),
    ("adopted_by_body", "通过机构"),
    ("effective_from", "生效日期"),
    ("effective_to", "停止日期"),
    ("note", "备注"),
)
INFO_KEYS = {text: key for key, text in INFO_FIELDS}


@dataclass(frozen=True)
class FileProblem:
    """One problem in a file: sheet, row and column letter (YAML: no sheet, line and key)."""

    sheet: str | None
    row: int | None
    column: str | None
    header: str | None
    message: str

    def __str__(self) -> str:
        where = [f"工作表 {self.sheet}"] if self.sheet else []
        if self.row is not None:
            where.append(f"第 {self.row} 行")
        if self.column:
            where.append(f"{self.column} 列" if self.sheet else self.column)
        text = " ".join(where)
        if self.header:
            text += f"（{self.header}）"
        return f"{text}：{self.message}" if text else self.message


@dataclass
class CatalogFile:
    """A catalog as read from or written to a file: its rules and where they came from."""

    rules: list[Rule]
    village: str | None = None
    village_name: str | None = None
    scheme: str | None = None
    scheme_name: str | None = None
    version: int | None = None
    status: str | None = None
    title: str | None = None
    adopted_on: date | None = None
    adopted_by_body: str | None = None
    effective_from: date | None = None
    effective_to: date | None = None
    note: str | None = None
    # None: the file lists no categories (an older file); the draft keeps the scheme's own.
    categories: list[Category] | None = None
    rows: list[int] = field(default_factory=list, repr=False)  # sheet row or YAML line per rule


def catalog_file(version: CatalogVersion, *, village: Village, scheme: Scheme) -> CatalogFile:
    """Return a stored version as a CatalogFile, ready to write."""
    return CatalogFile(
        rules=rules_of(version),
        village=village.code,
        village_name=village.name,
        scheme=scheme.code,
        scheme_name=scheme.name,
        version=version.number,
        status=str(version.status),
        title=version.title,
        adopted_on=version.adopted_on,
        adopted_by_body=version.adopted_by_body,
        effective_from=version.effective_from,
        effective_to=version.effective_to,
        note=version.note or None,
        categories=categories_of(version),
    )


def read_catalog(path: str | Path) -> CatalogFile:
    """Read a .xlsx, .yaml/.yml or .json catalog; raise CatalogProblemsError listing every problem."""
    suffix = Path(path).suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx(path)
    if suffix in (".yaml", ".yml", ".json"):
        return read_yaml(path)
    problem = FileProblem(
        None, None, None, None, f"不支持的文件类型“{suffix}”，请用 .xlsx 或 .yaml"
    )
    raise CatalogProblemsError([problem])


def write_catalog(path: str | Path, data: CatalogFile) -> None:
    """Write a catalog as .xlsx, .yaml/.yml or .json, chosen by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".xlsx":
        write_xlsx(path, data)
    elif suffix in (".yaml", ".yml", ".json"):
        write_yaml(path, data)
    else:
        raise ValueError(f"不支持的文件类型“{suffix}”，请用 .xlsx、.yaml 或 .json")


# ---------------------------------------------------------------------------------------------
# Excel
# ---------------------------------------------------------------------------------------------


def write_xlsx(path: str | Path, data: CatalogFile) -> None:
    """Write the rules sheet (Chinese headers and values, dropdowns), the help and the info sheet."""
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for n, (key, header) in enumerate(COLUMNS, start=1):
        cell = sheet.cell(1, n, header)
        cell.font, cell.fill = bold, fill
        width = 40 if key in ("name", "description") else 24 if key.endswith("roles") else 10
        sheet.column_dimensions[get_column_letter(n)].width = width
    wrap = Alignment(wrap_text=True, vertical="top")
    for r, rule in enumerate(data.rules, start=2):
        flat = flatten_rule(rule)
        for n, (key, _) in enumerate(COLUMNS, start=1):
            value = flat[key] if key in INT_KEYS else display_value(key, flat[key]) or None
            cell = sheet.cell(r, n, value)
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # a name like "=…" is text, never a formula
            if key in ("name", "description"):
                cell.alignment = wrap
    sheet.freeze_panes = "C2"
    last = max(len(data.rules) + 1, 2) + 500  # room for rules added by hand
    for key, options in DROPDOWNS.items():
        check = DataValidation(
            type="list", formula1='"' + ",".join(options) + '"', allow_blank=True
        )
        check.error = "请从下拉列表中选择：" + "、".join(options)
        check.add(f"{LETTERS[key]}2:{LETTERS[key]}{last}")
        sheet.add_data_validation(check)
    categories = data.categories if data.categories is not None else list(DEFAULT_CATEGORIES)
    _write_categories(book.create_sheet(CATEGORY_SHEET), categories, bold, fill)
    # The category column's dropdown lists the categories sheet, so a new category added there
    # is offered in the rules sheet at once.
    check = DataValidation(type="list", formula1=f"'{CATEGORY_SHEET}'!$A$2:$A$50", allow_blank=True)
    check.error = f"请从“{CATEGORY_SHEET}”工作表列出的类别中选择"
    check.add(f"{LETTERS['category']}2:{LETTERS['category']}{last}")
    sheet.add_data_validation(check)
    _write_help(book.create_sheet(HELP_SHEET), bold, fill)
    _write_info(book.create_sheet(INFO_SHEET), data, bold)
    book.save(path)


def _write_categories(sheet, categories: list[Category], bold, fill) -> None:
    for n, (_key, header) in enumerate(CATEGORY_COLUMNS, start=1):
        cell = sheet.cell(1, n, header)
        cell.font, cell.fill = bold, fill
    for c in categories:
        sheet.append([c.name, c.description or None, BOOL_TEXT[c.black]])
    check = DataValidation(type="list", formula1='"是,否"', allow_blank=True)
    check.add(f"{CATEGORY_LETTERS['black']}2:{CATEGORY_LETTERS['black']}50")
    sheet.add_data_validation(check)
    sheet.column_dimensions["A"].width = 14
    sheet.column_dimensions["B"].width = 50
    sheet.column_dimensions["C"].width = 12


def _write_help(sheet, bold, fill) -> None:
    sheet.append(
        ["本表是村规民约积分标准的导入导出格式。在“积分标准”工作表中每行填写一项，第一行是列标题。"]
    )
    sheet.append(["导入时逐格检查，所有问题一次列出（工作表、行、列），有任何问题都不会写入。"])
    sheet.append([])
    sheet.append(["列", "列标题", "填写说明"])
    for cell in sheet[4]:
        cell.font, cell.fill = bold, fill
    for key, header in COLUMNS:
        sheet.append([LETTERS[key], header, HELP[key]])
    sheet.append([])
    sheet.append([f"“{CATEGORY_SHEET}”工作表：每行一个类别，顺序即红黑榜和报表的顺序。"])
    sheet.append(["A", "类别", "必填。不超过 16 个字的中文词，如乡风文明、产业发展；不能重复"])
    sheet.append(["B", "说明", "选填。这一类包括哪些行为"])
    sheet.append(
        ["C", "扣分上黑榜", "是或否：这一类的扣分（违反村规民约）上黑榜；默认只有法治为是"]
    )
    sheet.column_dimensions["B"].width = 12
    sheet.column_dimensions["C"].width = 90


def _write_info(sheet, data: CatalogFile, bold) -> None:
    sheet.append(["项目", "内容"])
    for cell in sheet[1]:
        cell.font = bold
    for key, text in INFO_FIELDS:
        value = getattr(data, key)
        if key == "status" and value in tuple(CatalogStatus):
            value = STATUS_TEXT[CatalogStatus(value)]
        sheet.append([text, value.isoformat() if isinstance(value, date) else value])
    sheet.append(["说明", "导入时只读取村庄代码、积分方案和标题；导入总是生成新的草案"])
    sheet.column_dimensions["A"].width = 12
    sheet.column_dimensions["B"].width = 50


def read_xlsx(path: str | Path) -> CatalogFile:
    """Read a workbook written by `write_xlsx` (and edited by hand); raise on any problem."""
    try:
        book = load_workbook(path, data_only=True, read_only=False)
    except Exception as exc:  # openpyxl raises many types for a file that is not a workbook
        raise CatalogProblemsError(
            [FileProblem(None, None, None, None, f"无法打开 Excel 文件：{exc}")]
        ) from exc
    if SHEET not in book.sheetnames:
        names = "、".join(book.sheetnames)
        problem = FileProblem(SHEET, None, None, None, f"找不到“{SHEET}”工作表（现有：{names}）")
        raise CatalogProblemsError([problem])
    out = CatalogFile(rules=[])
    if INFO_SHEET in book.sheetnames:
        _read_info(book[INFO_SHEET], out)
    problems: list[FileProblem] = []
    if CATEGORY_SHEET in book.sheetnames:
        out.categories, category_problems = _read_categories(book[CATEGORY_SHEET])
        problems += category_problems
    rules, rows, rule_problems = _read_rules(book[SHEET], out.categories)
    problems += rule_problems
    if problems:
        raise CatalogProblemsError(problems)
    out.rules, out.rows = rules, rows
    return out


def _read_info(sheet, out: CatalogFile) -> None:
    for label, value, *_ in sheet.iter_rows(min_row=1, min_col=1, max_col=2, values_only=True):
        key = INFO_KEYS.get(str(label).strip()) if label is not None else None
        if key in ("village", "scheme", "title") and not _blank(value):
            setattr(out, key, str(value).strip())
        elif key == "version" and isinstance(value, int | float) and not isinstance(value, bool):
            out.version = int(value)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _header_key(value: Any) -> str | None:
    # "加减分(加分/扣分)" reads as "加减分": people copy hints from the help sheet into headers.
    text = re.sub(r"[(（].*[)）]$", "", str(value)).strip()
    return HEADER_KEYS.get(text)


def _read_categories(sheet) -> tuple[list[Category], list[FileProblem]]:
    """Read the categories sheet: every problem by row and column, none stops the reading."""
    table = [list(row) for row in sheet.iter_rows(min_row=1, min_col=1, values_only=True)]
    problems: list[FileProblem] = []
    if not table:
        return [], [FileProblem(CATEGORY_SHEET, None, None, None, "工作表是空的")]
    index: dict[str, int] = {}
    for i, value in enumerate(table[0]):
        if _blank(value):
            continue
        key = CATEGORY_HEADERS.get(re.sub(r"[(（].*[)）]$", "", str(value)).strip())
        if key is None:
            message = f"不认识的列标题“{value}”，应为类别、说明、扣分上黑榜"
            problems.append(FileProblem(CATEGORY_SHEET, 1, get_column_letter(i + 1), None, message))
        elif key not in index:
            index[key] = i
    if "name" not in index:
        problems.append(FileProblem(CATEGORY_SHEET, 1, None, "类别", "缺少这一必填列"))
        return [], problems
    categories: list[Category] = []
    rows: list[int] = []
    for number, row in enumerate(table[1:], start=2):
        cells = {key: row[i] if i < len(row) else None for key, i in index.items()}
        if all(_blank(v) for v in row):
            continue
        black, message = (False, None)
        if not _blank(cells.get("black")):
            value = cells["black"]
            black, message = (
                (value, None)
                if isinstance(value, bool)
                else _lookup(BOOL_VALUES, str(value).strip(), "是或否")
            )
        if message:
            problems.append(
                FileProblem(
                    CATEGORY_SHEET, number, CATEGORY_LETTERS["black"], "扣分上黑榜", message
                )
            )
        name = "" if _blank(cells["name"]) else str(cells["name"]).strip()
        description = "" if _blank(cells.get("description")) else str(cells["description"]).strip()
        categories.append(Category(name=name, description=description, black=bool(black)))
        rows.append(number)
    for p in check_categories(categories):
        row = rows[p.position - 1] if p.position else None
        column = CATEGORY_LETTERS["name"] if p.position else None
        problems.append(FileProblem(CATEGORY_SHEET, row, column, "类别", p.message))
    problems.sort(key=lambda p: (p.row or 0, p.column or ""))
    return categories, problems


def _categories_to_check(categories: list[Category] | None) -> list[Category]:
    """The categories rules are checked against: the file's, or for a file written before
    categories were catalog data (no categories sheet or key), the four defaults."""
    return list(DEFAULT_CATEGORIES) if categories is None else categories


def _read_rules(
    sheet, categories: list[Category] | None = None
) -> tuple[list[Rule], list[int], list[FileProblem]]:
    table = [list(row) for row in sheet.iter_rows(min_row=1, min_col=1, values_only=True)]
    if not table:
        return [], [], [FileProblem(SHEET, None, None, None, "工作表是空的")]
    problems: list[FileProblem] = []
    index: dict[str, int] = {}  # key -> 0-based column index
    for i, value in enumerate(table[0]):
        letter = get_column_letter(i + 1)
        if _blank(value):
            if any(i < len(row) and not _blank(row[i]) for row in table[1:]):
                problems.append(FileProblem(SHEET, 1, letter, None, "此列有内容但没有列标题"))
            continue
        key = _header_key(value)
        if key is None:
            message = f"不认识的列标题“{value}”，可用的列标题见“{HELP_SHEET}”工作表"
            problems.append(FileProblem(SHEET, 1, letter, str(value), message))
        elif key in index:
            first = get_column_letter(index[key] + 1)
            message = f"列标题重复，{first} 列已是“{FIELD_TEXT[key]}”"
            problems.append(FileProblem(SHEET, 1, letter, FIELD_TEXT[key], message))
        else:
            index[key] = i
    for key in REQUIRED:
        if key not in index:
            problems.append(FileProblem(SHEET, 1, None, FIELD_TEXT[key], "缺少这一必填列"))

    def column(key: str) -> str | None:
        return get_column_letter(index[key] + 1) if key in index else None

    rules: list[Rule] = []
    rows: list[int] = []
    broken: set[tuple[int, str]] = set()  # (row, key) already reported while reading cells
    for number, row in enumerate(table[1:], start=2):
        cells = {key: row[i] if i < len(row) else None for key, i in index.items()}
        if all(_blank(v) for v in row):
            continue
        values: dict[str, Any] = {}
        for key, _ in COLUMNS:
            value, message = _parse_cell(key, cells.get(key))
            if message is None and key in REQUIRED and key in index and _blank(cells[key]):
                message = "必填，不能为空"
            if key in REQUIRED and key not in index:
                broken.add((number, key))  # the missing column was reported once, at the header
            if message is not None:
                if key in index:
                    problems.append(
                        FileProblem(SHEET, number, column(key), FIELD_TEXT[key], message)
                    )
                broken.add((number, key))
            values[key] = value
        rules.append(_rule(values))
        rows.append(number)

    def row_of(position: int) -> str:
        return f"第 {rows[position - 1]} 行"

    checked = _categories_to_check(categories)
    for p in check_rules(rules, categories=checked, where=row_of):
        if p.field == "categories":
            continue  # reported by row on the categories sheet
        number = rows[p.position - 1] if p.position else None
        key = _cap_key(p.message) if p.field == "caps" else p.field
        if (number, key) in broken:
            continue  # the cell itself was already reported; its rule-level echo would repeat it
        header = FIELD_TEXT[key] if key in LETTERS else None
        problems.append(FileProblem(SHEET, number, column(key), header, p.message))
    order = {header: n for n, (_, header) in enumerate(COLUMNS)}
    problems.sort(
        key=lambda p: (
            p.row or 0,
            column_index_from_string(p.column) if p.column else 10_000 + order.get(p.header, 0),
        )
    )
    return rules, rows, problems


def _cap_key(message: str) -> str:
    # validate_rule reports caps as one field; its message starts with the window's "每月…".
    for window in Window:
        if message.startswith(WINDOW_TEXT[window][0]):
            return f"caps.{window}"
    return "caps"


def _parse_cell(key: str, value: Any) -> tuple[Any, str | None]:
    """Return (engine value, None) or (None, Chinese message) for one cell."""
    if _blank(value):
        empty = {"description": "", "recorder_roles": frozenset(), "subjects": frozenset()}
        empty |= {"once": False, "auto_watch": frozenset()}
        return empty.get(key), None
    if key in INT_KEYS:
        return _parse_int(value)
    if key in DATE_KEYS:
        return _parse_date(value)
    text = str(value).strip()
    if key == "code":
        return text.upper(), None
    if key in ("name", "category", "subcategory", "description"):
        return text, None
    if key == "sign":
        return _lookup(SIGN_VALUES, text, "加分或扣分")
    if key == "unit":
        return _lookup(UNIT_VALUES, text, "次、小时或天")
    if key == "review":
        return _lookup(REVIEW_VALUES, text, "必须、无需或达到阈值")
    if key in ("repeat_window", "veto"):
        return _lookup(SPAN_VALUES, text, "月、周期或年")
    if key == "auto":
        return _lookup(AUTO_VALUES, text, "月、季度或年")
    if key == "auto_watch":
        return frozenset(
            t.upper() if t.isascii() else t for t in LIST_SEPARATORS.split(text) if t
        ), None
    if key == "campaign_name":
        return text, None
    if key in ("evidence_required", "honourable", "once"):
        if isinstance(value, bool):
            return value, None
        return _lookup(BOOL_VALUES, text, "是或否")
    if key == "recorder_roles":
        return _parse_list(text, ROLE_VALUES, "角色", ROLE_TEXT.values())
    return _parse_list(text, SUBJECT_VALUES, "适用对象", SUBJECT_TEXT.values())


def _parse_date(value: Any) -> tuple[date | None, str | None]:
    if isinstance(value, datetime):
        return value.date(), None
    if isinstance(value, date):
        return value, None
    try:
        return date.fromisoformat(str(value).strip()), None
    except ValueError:
        return None, f"应填日期，如 2026-11-01，现为“{value}”"


def _parse_int(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, bool):
        return None, f"应填整数，现为“{value}”"
    if isinstance(value, int):
        return value, None
    if isinstance(value, float) and value.is_integer():
        return int(value), None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value), None
    return None, f"应填整数，现为“{value}”"


def _lookup(table: dict[str, Any], text: str, allowed: str) -> tuple[Any, str | None]:
    if text in table:
        return table[text], None
    return None, f"“{text}”不是可选的值，应为{allowed}"


def _parse_list(
    text: str, table: dict[str, str], what: str, allowed
) -> tuple[frozenset, str | None]:
    items = [t for t in LIST_SEPARATORS.split(text) if t]
    unknown = [t for t in items if t not in table]
    if unknown:
        options = "、".join(allowed)
        return frozenset(), f"{what}“{'、'.join(unknown)}”不存在，可填：{options}"
    return frozenset(table[t] for t in items), None


def _rule(values: dict[str, Any]) -> Rule:
    """Build a Rule from parsed cells; broken cells are None and caught by validation anyway."""
    caps = {
        Window(key.removeprefix("caps.")): values[key]
        for key, _ in COLUMNS
        if key.startswith("caps.") and values[key] is not None
    }
    plain = {k: v for k, v in values.items() if not k.startswith("caps.")}
    for key in ("repeat_window", "veto"):
        if plain.get(key) is not None:
            plain[key] = Window(plain[key])
    if plain.get("auto") is not None:
        plain["auto"] = AutoPeriod(plain["auto"])
    return Rule(**plain, caps=caps)


# ---------------------------------------------------------------------------------------------
# YAML (and JSON, which YAML reads too)
# ---------------------------------------------------------------------------------------------

YAML_KEYS = tuple(key for key, _ in INFO_FIELDS) + ("categories", "rules")
REQUIRED_YAML = ("code", "name", "category", "sign")
YAML_TYPES: dict[str, tuple[type, ...]] = {
    "code": (str,),
    "name": (str,),
    "category": (str,),
    "subcategory": (str, type(None)),
    "description": (str, type(None)),
    "sign": (int,),
    "points": (int, type(None)),
    "min_points": (int, type(None)),
    "max_points": (int, type(None)),
    "unit": (str,),
    "caps": (dict, type(None)),
    "evidence_required": (bool,),
    "review": (str,),
    "review_threshold": (int, type(None)),
    "recorder_roles": (list,),
    "subjects": (list,),
    "honourable": (bool,),
    "once": (bool,),
    "notice_days": (int, type(None)),
    "repeat_window": (str, type(None)),
    "repeat_multiplier": (int, type(None)),
    "repeat_points": (int, type(None)),
    "veto": (str, type(None)),
    "auto": (str, type(None)),
    "auto_months": (int, type(None)),
    "auto_min_count": (int, type(None)),
    "auto_watch": (list,),
    "campaign_name": (str, type(None)),
    "campaign_from": (date, str, type(None)),
    "campaign_to": (date, str, type(None)),
    "campaign_multiplier": (int, type(None)),
}
TYPE_TEXT = {str: "文字", int: "整数", bool: "true 或 false", dict: "键值表", list: "列表"}
TYPE_TEXT[date] = "日期（如 2026-11-01）"


def write_yaml(path: str | Path, data: CatalogFile) -> None:
    """Write the catalog with plain keys: version details, then `rules` as the engine spells them."""
    doc: dict[str, Any] = {}
    for key, _ in INFO_FIELDS:
        value = getattr(data, key)
        doc[key] = value.isoformat() if isinstance(value, date) else value
    categories = data.categories if data.categories is not None else list(DEFAULT_CATEGORIES)
    doc["categories"] = [category_to_dict(c) for c in categories]
    doc["rules"] = [rule_to_dict(rule) for rule in data.rules]
    if Path(path).suffix.lower() == ".json":
        text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    else:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
    Path(path).write_text(text, encoding="utf-8")


def read_yaml(path: str | Path) -> CatalogFile:
    """Read a YAML or JSON catalog; raise CatalogProblemsError naming each problem's line and key."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise CatalogProblemsError(
            [FileProblem(None, line, None, None, f"文件格式有误：{getattr(exc, 'problem', exc)}")]
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise CatalogProblemsError([FileProblem(None, 1, None, None, "文件应含 rules: 规则列表")])
    lines = _yaml_lines(root)
    problems: list[FileProblem] = []
    for key in doc:
        if key not in YAML_KEYS and key != "name":  # "name": the shipped default catalogs' title
            problems.append(FileProblem(None, lines.get((None, key)), str(key), None, "未知字段"))
    out = CatalogFile(rules=[])
    for key in ("village", "scheme", "title", "status"):
        if doc.get(key) is not None:
            setattr(out, key, str(doc[key]))
    out.title = out.title or (str(doc["name"]) if doc.get("name") else None)
    if isinstance(doc.get("version"), int):
        out.version = doc["version"]
    if "categories" in doc:
        out.categories, category_problems = _yaml_categories(doc["categories"], lines)
        problems += category_problems
    rules, rows, broken, skip = [], [], set(), set()
    for n, item in enumerate(doc["rules"]):
        line = lines.get((n, None))
        rule, item_problems = _yaml_rule(item, n, line, lines)
        problems += item_problems
        broken |= {(n + 1, p.column) for p in item_problems}
        if any(p.column is None for p in item_problems):
            skip.add(n + 1)  # not a mapping at all: its rule-level problems would be noise
        rules.append(rule)
        rows.append(line)
    checked = _categories_to_check(out.categories)
    where = lambda pos: f"第 {rows[pos - 1]} 行的规则"  # noqa: E731
    for p in check_rules(rules, categories=checked, where=where):
        if p.field == "categories":
            continue  # reported with its line above
        if (p.position, p.field) in broken or p.position in skip:
            continue
        line = lines.get((p.position - 1, p.field), rows[p.position - 1]) if p.position else None
        header = FIELD_TEXT.get(p.field) if p.position else None
        problems.append(FileProblem(None, line, p.field if p.position else None, header, p.message))
    if problems:
        raise CatalogProblemsError(sorted(problems, key=lambda p: p.row or 0))
    out.rules, out.rows = rules, rows
    return out


def _yaml_categories(items: Any, lines) -> tuple[list[Category], list[FileProblem]]:
    """Read `categories:`; every problem names its line and key."""
    top = lines.get((None, "categories"))
    if not isinstance(items, list):
        return [], [FileProblem(None, top, "categories", "类别", "应为类别列表")]
    problems: list[FileProblem] = []
    out: list[Category] = []
    for n, item in enumerate(items):
        line = lines.get(("categories", n), top)
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            problems.append(
                FileProblem(None, line, "categories", "类别", "每个类别应为键值表（name: …）")
            )
            continue
        unknown = sorted(set(map(str, item)) - {"name", "description", "black"})
        if unknown:
            message = f"未知字段：{'、'.join(unknown)}"
            problems.append(FileProblem(None, line, "categories", "类别", message))
        name, description = item.get("name"), item.get("description") or ""
        black = item.get("black", False)
        if not isinstance(name, str) or not isinstance(description, str):
            problems.append(FileProblem(None, line, "name", "类别", "类别名称和说明应为文字"))
            name, description = str(name or ""), str(description)
        if not isinstance(black, bool):
            problems.append(FileProblem(None, line, "black", "扣分上黑榜", "应为 true 或 false"))
            black = False
        out.append(Category(name=name.strip(), description=description.strip(), black=black))
    for p in check_categories(out):
        line = lines.get(("categories", p.position - 1), top) if p.position else top
        problems.append(FileProblem(None, line, "categories", "类别", p.message))
    return out, problems


def _yaml_lines(root) -> dict[tuple[Any, Any], int]:
    """Map (rule index, key) to a 1-based line: (None, key) for top-level keys, (n, None) items,
    ("categories", n) for the categories."""
    lines: dict[tuple[Any, Any], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, value_node in root.value:
        lines[(None, key_node.value)] = key_node.start_mark.line + 1
        if key_node.value == "categories" and isinstance(value_node, yaml.SequenceNode):
            for n, item in enumerate(value_node.value):
                lines[("categories", n)] = item.start_mark.line + 1
        if key_node.value == "rules" and isinstance(value_node, yaml.SequenceNode):
            for n, item in enumerate(value_node.value):
                lines[(n, None)] = item.start_mark.line + 1
                if isinstance(item, yaml.MappingNode):
                    for k, _ in item.value:
                        lines[(n, k.value)] = k.start_mark.line + 1
    return lines


def _yaml_rule(item: Any, n: int, line: int | None, lines) -> tuple[Rule, list[FileProblem]]:
    if not isinstance(item, dict):
        empty = Rule(code="", name="", category="")
        return empty, [FileProblem(None, line, None, None, "每条规则应为键值表（code: …）")]
    problems = []
    values: dict[str, Any] = {}

    def problem(key: str, message: str) -> None:
        where = lines.get((n, key), line)
        problems.append(FileProblem(None, where, key, FIELD_TEXT.get(key), message))

    for key, value in item.items():
        if key not in RULE_FIELDS:
            problem(str(key), "未知字段")
            continue
        types = YAML_TYPES[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            problem(key, f"应为{TYPE_TEXT[types[0]]}，现为“{value}”")
            continue
        values[key] = value
    for key in REQUIRED_YAML:
        if key not in item:
            problem(key, "缺少必填字段")
    if values.get("description") is None:
        values.pop("description", None)
    if values.get("unit") is not None and values["unit"] not in tuple(Unit):
        problem("unit", f"“{values.pop('unit')}”不是可选的值，应为 time、hour 或 day")
    if values.get("review") is not None and values["review"] not in tuple(Review):
        problem("review", f"“{values.pop('review')}”不是可选的值，应为 always、never 或 threshold")
    caps = values.pop("caps", None) or {}
    known = {str(w) for w in Window}
    if set(caps) - known:
        problem(
            "caps",
            f"上限周期“{'、'.join(map(str, set(caps) - known))}”不存在，应为 day、month、period 或 year",
        )
    elif not all(isinstance(v, int) and not isinstance(v, bool) for v in caps.values()):
        problem("caps", "上限应为整数")
    else:
        values["caps"] = {Window(k): v for k, v in caps.items()}
    spans = ("month", "period", "year")
    for key in ("repeat_window", "veto"):
        if values.get(key) is not None and values[key] not in spans:
            problem(key, f"“{values.pop(key)}”不是可选的值，应为 month、period 或 year")
        elif values.get(key) is not None:
            values[key] = Window(values[key])
    if values.get("auto") is not None and values["auto"] not in tuple(AutoPeriod):
        problem("auto", f"“{values.pop('auto')}”不是可选的值，应为 month、quarter 或 year")
    elif values.get("auto") is not None:
        values["auto"] = AutoPeriod(values["auto"])
    for key in DATE_KEYS:
        if isinstance(values.get(key), str):
            parsed, message = _parse_date(values[key])
            if message:
                problem(key, message)
                values.pop(key)
            else:
                values[key] = parsed
    for key in ("recorder_roles", "subjects", "auto_watch"):
        if key in values and not all(isinstance(v, str) for v in values[key]):
            problem(key, "应为文字列表")
            values.pop(key)
    values.setdefault("code", "")
    values.setdefault("name", "")
    values.setdefault("category", "")
    return Rule(**values), problems
