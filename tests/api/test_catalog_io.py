"""Catalog files: Excel and YAML round trips, and a broken sheet reported cell by cell."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from api.catalog.files import (
    CATEGORY_SHEET,
    HELP_SHEET,
    INFO_SHEET,
    SHEET,
    CatalogFile,
    catalog_file,
    read_catalog,
    read_xlsx,
    read_yaml,
    write_catalog,
    write_xlsx,
)
from points import catalog
from points.catalog.rules import rule_from_dict
from points.demo import CATALOG_DIR
from points.errors import CatalogProblemsError
from points.models import CatalogVersion
from tests.factories import make_scheme, make_village

HEADERS = [
    "编码",
    "名称",
    "类别",
    "子类",
    "说明",
    "加减分",
    "分值",
    "最低分",
    "最高分",
    "单位",
    "每日上限",
    "每月上限",
    "每期上限",
    "每年上限",
    "需要佐证",
    "审核",
    "审核阈值",
    "可登记角色",
    "适用对象",
    "红榜",
    "每户限一次",
    "累计上限",
    "公示天数",
    "累犯周期",
    "第二次倍数",
    "第三次起扣分",
    "一票否决",
    "自动评定",
    "连续月数",
    "满足次数",
    "条件类别或编码",
    "活动名称",
    "活动开始",
    "活动结束",
    "活动倍数",
]


def default_rules(scheme: str):
    data = json.loads((CATALOG_DIR / f"{scheme}.json").read_text(encoding="utf-8"))
    return [rule_from_dict(item) for item in data["rules"]]


def problems_of(path) -> list[str]:
    with pytest.raises(CatalogProblemsError) as caught:
        read_catalog(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("scheme", ["household", "party"])
@pytest.mark.parametrize("suffix", [".xlsx", ".yaml", ".json"])
def test_default_catalogs_round_trip_without_loss(tmp_path, scheme, suffix):
    rules = default_rules(scheme)
    # A name that looks like a formula must come back as text, not be evaluated by Excel.
    rules[0] = dataclasses.replace(rules[0], name="=SUM(A1:A9) 不是公式")
    out = CatalogFile(rules=rules, village="demo", scheme=scheme, version=3, title="2027 年标准")
    path = tmp_path / f"catalog{suffix}"
    write_catalog(path, out)

    back = read_catalog(path)
    assert back.rules == rules
    assert catalog.diff_rules(rules, back.rules).empty
    assert (back.village, back.scheme, back.version, back.title) == (
        "demo",
        scheme,
        3,
        "2027 年标准",
    )


def test_a_stored_version_round_trips_through_excel_into_an_identical_draft(tmp_path, session, now):
    village = make_village(session, "xinglong", name="兴隆村")
    scheme = make_scheme(session, village)
    v1 = catalog.create_draft(
        session,
        scheme=scheme,
        rules=default_rules("household"),
        title="2026 年积分标准",
        actor_id=None,
        now=now,
    )
    catalog.adopt(
        session,
        version=v1,
        body="村民代表大会",
        adopted_on=date(2026, 1, 8),
        actor_id=None,
        now=now,
    )
    path = tmp_path / "兴隆村.xlsx"
    write_xlsx(path, catalog_file(v1, village=village, scheme=scheme))

    book = load_workbook(path)
    assert book.sheetnames == [SHEET, CATEGORY_SHEET, HELP_SHEET, INFO_SHEET]
    sheet = book[SHEET]
    assert [c.value for c in sheet[1]] == HEADERS
    first = {h: c.value for h, c in zip(HEADERS, sheet[2], strict=True)}
    assert first["加减分"] == "加分" and first["单位"] == "次" and first["每月上限"] == 5
    assert first["需要佐证"] == "否" and first["审核"] == "无需" and first["红榜"] == "否"
    assert first["可登记角色"] == "村两委、网格员" and first["适用对象"] == "农户"
    info = {row[0].value: row[1].value for row in book[INFO_SHEET].iter_rows(min_row=2)}
    assert info["村庄代码"] == "xinglong" and info["版本号"] == 1 and info["状态"] == "已通过"
    assert info["通过机构"] == "村民代表大会" and info["通过日期"] == "2026-01-08"
    assert "可登记角色" in [c.value for c in book[HELP_SHEET]["B"]]

    back = read_xlsx(path)
    draft, _ = catalog.save_draft(
        session, scheme=scheme, rules=back.rules, title="", actor_id=None, now=now
    )
    assert catalog.diff_versions(v1, draft).empty


def test_cadres_edits_are_understood(tmp_path):
    path = tmp_path / "edited.xlsx"
    write_xlsx(path, CatalogFile(rules=default_rules("household")[:3]))
    book = load_workbook(path)
    sheet = book[SHEET]
    sheet["A2"] = "xiao-01"  # lower case
    sheet["G2"] = 6.0  # Excel stores numbers as floats
    sheet["L2"] = " 12 "  # a number typed as text
    sheet["F1"] = "加减分(加分/扣分)"  # a hint copied into the header
    sheet["R3"] = "村两委, 网格员，村民本人"  # other separators
    sheet["P4"] = "超过阈值"
    sheet["Q4"] = 10
    sheet.insert_rows(3)  # a blank row in the middle
    book.save(path)

    rules = read_xlsx(path).rules
    assert len(rules) == 3
    assert (rules[0].code, rules[0].points, rules[0].caps) == ("XIAO-01", 6, {"month": 12})
    assert rules[1].recorder_roles == {"admin", "recorder", "resident"}
    assert (rules[2].review, rules[2].review_threshold) == ("threshold", 10)


def test_columns_may_be_reordered_and_optional_ones_left_out(tmp_path):
    path = tmp_path / "short.xlsx"
    write_xlsx(path, CatalogFile(rules=default_rules("household")[:2]))
    book = load_workbook(path)
    sheet = book[SHEET]
    sheet.delete_cols(5)  # 说明: optional
    sheet.move_range("A1:A3", cols=sheet.max_column)  # 编码 last
    sheet.delete_cols(1)
    book.save(path)

    rules = read_xlsx(path).rules
    assert [r.code for r in rules] == ["XIAO-01", "XIAO-02"]
    assert all(r.description == "" for r in rules)


def broken_sheet(tmp_path):
    """The household catalog's first rows, each broken in one of the ways a cadre breaks it."""
    path = tmp_path / "broken.xlsx"
    write_xlsx(path, CatalogFile(rules=default_rules("household")[:12], village="demo"))
    book = load_workbook(path)
    sheet = book[SHEET]
    sheet["G2"] = "五分"  # wrong type
    sheet["C3"] = "德行"  # unknown category
    sheet["G4"], sheet["H4"], sheet["I4"] = None, 10, 3  # min > max
    sheet["A6"] = sheet["A5"].value  # duplicate code
    sheet["B7"] = None  # empty required cell
    sheet["J8"] = "周"  # unknown unit
    sheet["R9"] = "村长、网格员"  # unknown role
    sheet["L10"] = 0  # cap not positive
    sheet["O11"] = "需要"  # not 是/否
    sheet["P12"], sheet["Q12"] = "达到阈值", None  # threshold missing
    sheet["U1"] = "备注"  # unknown header
    book.save(path)
    return path


def test_a_broken_sheet_reports_every_problem_with_row_and_column(tmp_path, session):
    path = broken_sheet(tmp_path)
    assert problems_of(path) == [
        "工作表 积分标准 第 1 行 U 列（备注）：不认识的列标题“备注”，可用的列标题见“说明”工作表",
        "工作表 积分标准 第 2 行 G 列（分值）：应填整数，现为“五分”",
        "工作表 积分标准 第 3 行 C 列（类别）：类别“德行”不存在，应为德治、自治、法治或党建",
        "工作表 积分标准 第 4 行 H 列（最低分）：最低分 10 不能高于最高分 3",
        "工作表 积分标准 第 6 行 A 列（编码）：编码“XIAO-04”与第 5 行重复",
        "工作表 积分标准 第 7 行 B 列（名称）：必填，不能为空",
        "工作表 积分标准 第 8 行 J 列（单位）：“周”不是可选的值，应为次、小时或天",
        "工作表 积分标准 第 9 行 R 列（可登记角色）：角色“村长”不存在，"
        "可填：村两委、评议小组、网格员、积分超市、村民本人",
        "工作表 积分标准 第 10 行 L 列（每月上限）：每月上限须为正整数",
        "工作表 积分标准 第 11 行 O 列（需要佐证）：“需要”不是可选的值，应为是或否",
        "工作表 积分标准 第 12 行 Q 列（审核阈值）：按分值审核时须填写审核分值线",
    ]
    assert session.execute(select(func.count()).select_from(CatalogVersion)).scalar_one() == 0


def test_header_problems_are_reported_once(tmp_path):
    path = tmp_path / "headers.xlsx"
    write_xlsx(path, CatalogFile(rules=default_rules("household")[:2]))
    book = load_workbook(path)
    sheet = book[SHEET]
    sheet["J1"] = "名称"  # 单位 renamed into a duplicate of B
    sheet["AK2"] = "孤零零的内容"  # data under no header
    book.save(path)
    assert problems_of(path) == [
        "工作表 积分标准 第 1 行 J 列（名称）：列标题重复，B 列已是“名称”",
        "工作表 积分标准 第 1 行 AK 列：此列有内容但没有列标题",
        "工作表 积分标准 第 1 行（单位）：缺少这一必填列",
    ]


def test_files_that_are_not_catalogs_are_refused(tmp_path):
    not_xlsx = tmp_path / "fake.xlsx"
    not_xlsx.write_text("hello")
    assert problems_of(not_xlsx)[0].startswith("无法打开 Excel 文件")

    other = tmp_path / "other.xlsx"
    write_xlsx(other, CatalogFile(rules=default_rules("party")[:1]))
    book = load_workbook(other)
    book[SHEET].title = "Sheet1"
    book.save(other)
    assert problems_of(other) == [
        "工作表 积分标准：找不到“积分标准”工作表（现有：Sheet1、类别、说明、版本信息）"
    ]

    empty = tmp_path / "empty.xlsx"
    write_xlsx(empty, CatalogFile(rules=default_rules("party")[:1]))
    book = load_workbook(empty)
    book[SHEET].delete_rows(2)
    book.save(empty)
    assert problems_of(empty) == ["工作表 积分标准：积分标准至少要有一项"]

    assert problems_of(tmp_path / "x.csv") == ["不支持的文件类型“.csv”，请用 .xlsx 或 .yaml"]


def test_a_broken_yaml_reports_lines_and_keys(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(
        """\
village: demo
scheme: household
colour: red
rules:
- code: XIAO-01
  name: 孝老爱亲
  category: 德治
  sign: 1
  points: five
  cap:
    month: 5
- code: XIAO-01
  name: 重复
  category: 德治
  sign: 1
  points: 2
  unit: week
- name: 没有编码
  category: 德治
  sign: -1
  points: 3
  recorder_roles: [admin, resident]
- just a string
""",
        encoding="utf-8",
    )
    assert problems_of(path) == [
        "第 3 行 colour：未知字段",
        "第 9 行 points（分值）：应为整数，现为“five”",
        "第 10 行 cap：未知字段",
        "第 12 行 code（编码）：编码“XIAO-01”与第 5 行的规则重复",
        "第 17 行 unit（单位）：“week”不是可选的值，应为 time、hour 或 day",
        "第 18 行 code（编码）：缺少必填字段",
        "第 22 行 recorder_roles（可登记角色）：扣分项不能由村民自行申报",
        "第 23 行：每条规则应为键值表（code: …）",
    ]


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("rules:\n  - code: [unclosed\n", encoding="utf-8")
    (problem,) = problems_of(path)
    assert problem.startswith("第 3 行：文件格式有误")


def test_the_shipped_json_catalog_imports_as_yaml():
    data = read_yaml(CATALOG_DIR / "household.json")
    assert data.title == "农户积分默认目录" and data.rules == default_rules("household")
