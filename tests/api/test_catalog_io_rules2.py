"""Rules engine 2 in catalog files: new Chinese columns with dropdowns, round trips through
Excel, YAML and JSON, every problem by row and column, and refusals of protected rights."""

from __future__ import annotations

import pytest
from openpyxl import load_workbook

from api.catalog.files import (
    SHEET,
    CatalogFile,
    read_catalog,
    read_yaml,
    write_catalog,
    write_xlsx,
)
from points.catalog import COLUMNS
from points.catalog.rules import rule_from_dict
from points.errors import CatalogProblemsError
from tests.points.test_rules2_claims import RULES as ACT_RULES
from tests.points.test_rules_auto import RULES as AUTO_RULES

RULES = [rule_from_dict(r) for r in ACT_RULES + AUTO_RULES[3:]] + [
    rule_from_dict(
        dict(ACT_RULES[2], code="FZ-52", name="聚众赌博", category="法治", veto="year",
             caps={"ever": 100})
    )
]  # fmt: skip
LETTER = {key: n for n, (key, _) in enumerate(COLUMNS, start=1)}


def problems_of(path) -> list[str]:
    with pytest.raises(CatalogProblemsError) as caught:
        read_catalog(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("suffix", [".xlsx", ".yaml", ".json"])
def test_every_new_kind_round_trips(tmp_path, suffix):
    path = tmp_path / f"rules2{suffix}"
    write_catalog(path, CatalogFile(rules=RULES))
    assert read_catalog(path).rules == RULES


def test_the_sheet_reads_in_chinese_with_dropdowns(tmp_path):
    path = tmp_path / "rules2.xlsx"
    write_xlsx(path, CatalogFile(rules=RULES))
    sheet = load_workbook(path)[SHEET]
    row = {h.value: c.value for h, c in zip(sheet[1], sheet[4], strict=True)}  # MEI-51
    assert row["累犯周期"] == "年" and row["第二次倍数"] == 2 and row["第三次起扣分"] == 20
    row = {h.value: c.value for h, c in zip(sheet[1], sheet[5], strict=True)}  # MEI-05
    assert row["活动名称"] == "环境宣传月" and row["活动开始"] == "2026-11-01"
    assert row["活动倍数"] == 2
    row = {h.value: c.value for h, c in zip(sheet[1], sheet[9], strict=True)}  # AUTO-02
    assert row["自动评定"] == "月" and row["连续月数"] == 3 and row["条件类别或编码"] == "法治"
    lists = {
        str(dv.sqref).split(":")[0]: dv.formula1 for dv in sheet.data_validations.dataValidation
    }
    letter = sheet.cell(1, LETTER["veto"]).column_letter
    assert lists[f"{letter}2"] == '"月,周期,年"'
    letter = sheet.cell(1, LETTER["auto"]).column_letter
    assert lists[f"{letter}2"] == '"月,季度,年"'


def test_broken_new_cells_are_reported_by_row_and_column(tmp_path):
    path = tmp_path / "broken.xlsx"
    write_xlsx(path, CatalogFile(rules=RULES))
    book = load_workbook(path)
    sheet = book[SHEET]

    def cell(row, key):
        return sheet.cell(row, LETTER[key])

    cell(4, "repeat_window").value = "周"  # MEI-51
    cell(5, "campaign_from").value = "十一月"  # MEI-05
    cell(4, "auto").value = "月"  # MEI-51 is a deduction: only awards are automatic
    cell(3, "name").value = "依法上访"  # JL-03: an award; harmless
    cell(11, "name").value = "到上级上访"  # FZ-52, a deduction: refused
    cell(7, "notice_days").value = 99
    book.save(path)
    col = {key: sheet.cell(1, n).column_letter for key, n in LETTER.items()}
    problems = problems_of(path)
    assert (
        f"工作表 积分标准 第 4 行 {col['repeat_window']} 列（累犯周期）：“周”不是可选的值，应为月、周期或年"
        in problems
    )
    assert (
        f"工作表 积分标准 第 5 行 {col['campaign_from']} 列（活动开始）：应填日期，如 2026-11-01，现为“十一月”"
        in problems
    )
    assert f"工作表 积分标准 第 4 行 {col['auto']} 列（自动评定）：自动评定只用于加分项" in problems
    assert (
        f"工作表 积分标准 第 7 行 {col['notice_days']} 列（公示天数）：公示天数须为 0 到 30 之间的整数"
        in problems
    )
    assert (
        f"工作表 积分标准 第 11 行 {col['name']} 列（名称）：不得对依法信访、举报、监督等行使权利的行为扣分或设置条件（含“上访”）"
        in problems
    )
    assert not any("第 3 行" in p for p in problems)


def test_a_condition_may_not_watch_a_protected_right(tmp_path):
    path = tmp_path / "watch.yaml"
    path.write_text(
        """rules:
- code: JD-01
  name: 参与村务监督
  category: 自治
  sign: 1
  points: 2
- code: AUTO-09
  name: 当月不监督
  category: 自治
  sign: 1
  points: 2
  auto: month
  auto_min_count: 1
  auto_watch: [JD-01]
- code: AUTO-10
  name: 全年无违法违规
  category: 法治
  sign: 1
  points: 10
  auto: yearly
""",
        encoding="utf-8",
    )
    right = "不得对依法信访、举报、监督等行使权利的行为扣分或设置条件（含“监督”）"
    assert problems_of(path) == [
        f"第 8 行 name（名称）：{right}",  # the condition's own name
        f"第 14 行 auto_watch（条件类别或编码）：{right}",  # the item it watches
        "第 20 行 auto（自动评定）：“yearly”不是可选的值，应为 month、quarter 或 year",
    ]
    with pytest.raises(CatalogProblemsError):
        read_yaml(path)
