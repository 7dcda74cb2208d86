"""A catalog's categories in its Excel and YAML files: a 类别 sheet (YAML: `categories:`) that
round-trips, problems reported by row and column (YAML: line and key), and the public rules
page listing the catalog's own categories in its order."""

from __future__ import annotations

from datetime import date

import pytest
import yaml
from openpyxl import load_workbook

from api.catalog.files import (
    CATEGORY_SHEET,
    SHEET,
    CatalogFile,
    catalog_file,
    read_catalog,
    write_catalog,
)
from points import catalog
from points.catalog import Category
from points.catalog.rules import rule_from_dict
from points.errors import CatalogProblemsError
from tests.factories import make_scheme, make_village
from tests.points.test_boards import RULES

CUSTOM = [
    *catalog.DEFAULT_CATEGORIES,
    Category(name="乡风文明", description="移风易俗、红白喜事简办", black=True),
    Category(name="产业发展"),
]
BANQUET = dict(
    code="XF-51", name="大操大办红白喜事", category="乡风文明", sign=-1, points=5,
    unit="time", review="always", recorder_roles=["admin", "recorder"], subjects=["household"],
)  # fmt: skip


def problems_of(path) -> list[str]:
    with pytest.raises(CatalogProblemsError) as err:
        read_catalog(path)
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize("suffix", [".xlsx", ".yaml"])
def test_a_catalog_with_its_own_categories_round_trips_into_an_identical_draft(
    tmp_path, session, now, suffix
):
    village = make_village(session)
    scheme = make_scheme(session, village)
    rules = [rule_from_dict(r) for r in [*RULES, BANQUET]]
    v1 = catalog.create_draft(
        session, scheme=scheme, rules=rules, title="2027", actor_id=None, now=now,
        categories=CUSTOM,
    )  # fmt: skip
    path = tmp_path / f"catalog{suffix}"
    write_catalog(path, catalog_file(v1, village=village, scheme=scheme))
    if suffix == ".xlsx":
        sheet = load_workbook(path)[CATEGORY_SHEET]
        assert [c.value for c in sheet[1]] == ["类别", "说明", "扣分上黑榜"]
        assert [r[0].value for r in sheet.iter_rows(min_row=2)] == [c.name for c in CUSTOM]
        assert [c.value for c in sheet[6]] == ["乡风文明", "移风易俗、红白喜事简办", "是"]
    data = read_catalog(path)
    assert data.categories == CUSTOM and data.rules == rules
    draft, _ = catalog.save_draft(
        session, scheme=scheme, rules=data.rules, title="again", actor_id=None, now=now,
        categories=data.categories,
    )  # fmt: skip
    assert catalog.categories_of(draft) == CUSTOM
    assert catalog.diff_versions(v1, draft).empty


def test_a_broken_categories_sheet_is_reported_by_row_and_column(tmp_path):
    path = tmp_path / "broken.xlsx"
    rules = [rule_from_dict(r) for r in [*RULES, BANQUET]]
    write_catalog(path, CatalogFile(rules=rules, categories=CUSTOM))
    book = load_workbook(path)
    cats = book[CATEGORY_SHEET]
    cats["A3"] = "德治"  # 自治 becomes a second 德治
    cats["C4"] = "也许"
    cats["A6"] = None  # 乡风文明 loses its name, so XF-51 names no category
    cats["B6"] = "说明还在"
    book[SHEET]["C2"] = "德行"
    book.save(path)
    assert problems_of(path) == [
        "工作表 类别 第 3 行 A 列（类别）：类别“德治”与第 1 个类别重复",
        "工作表 类别 第 4 行 C 列（扣分上黑榜）：“也许”不是可选的值，应为是或否",
        "工作表 类别 第 6 行 A 列（类别）：请填写类别名称",
        "工作表 积分标准 第 2 行 C 列（类别）：类别“德行”不存在，应为德治、法治、党建或产业发展",
        "工作表 积分标准 第 6 行 C 列（类别）：类别“乡风文明”不存在，应为德治、法治、党建或产业发展",
    ]


def test_a_broken_yaml_categories_list_names_its_lines(tmp_path):
    path = tmp_path / "broken.yaml"
    write_catalog(path, CatalogFile(rules=[rule_from_dict(RULES[0])], categories=CUSTOM))
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["categories"][1] = {"name": "PARTY", "colour": "red"}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "PARTY" in text or "colour" in text)
    got = problems_of(path)
    assert f"第 {line} 行 categories（类别）：未知字段：colour" in got
    assert any("“PARTY”须用中文" in p for p in got)


def test_an_older_file_without_categories_keeps_the_schemes_own(tmp_path, session, now):
    village = make_village(session)
    scheme = make_scheme(session, village)
    rules = [rule_from_dict(r) for r in RULES]
    v1 = catalog.create_draft(
        session, scheme=scheme, rules=rules, title="2027", actor_id=None, now=now,
        categories=CUSTOM,
    )  # fmt: skip
    catalog.adopt(
        session, version=v1, body="村民代表大会", adopted_on=date(2026, 1, 8), actor_id=None,
        now=now,
    )  # fmt: skip
    path = tmp_path / "old.xlsx"
    write_catalog(path, CatalogFile(rules=rules))
    book = load_workbook(path)
    del book[CATEGORY_SHEET]
    book.save(path)
    data = read_catalog(path)
    assert data.categories is None
    draft, _ = catalog.save_draft(
        session, scheme=scheme, rules=data.rules, title="", actor_id=None, now=now,
        categories=data.categories,
    )  # fmt: skip
    assert catalog.categories_of(draft) == CUSTOM


def test_the_public_rules_page_lists_the_catalogs_categories_in_order(app, client, session, now):
    village = make_village(session, "fengle", name="丰乐村")
    scheme = make_scheme(session, village)
    v1 = catalog.create_draft(
        session, scheme=scheme, rules=[rule_from_dict(r) for r in [*RULES, BANQUET]],
        title="2027", actor_id=None, now=now, categories=CUSTOM,
    )  # fmt: skip
    catalog.adopt(
        session, version=v1, body="村民代表大会", adopted_on=date(2026, 1, 8), actor_id=None,
        now=now,
    )  # fmt: skip
    session.commit()
    page = client.get("/public/fengle/rules").get_data(as_text=True)
    assert "<strong>乡风文明</strong>：移风易俗、红白喜事简办（扣分上黑榜）" in page
    assert "<strong>法治</strong>：平安建设、普法、遵守村规民约（扣分上黑榜）" in page
    # Groups: 加分 then 扣分, each in the catalog's category order.
    order = [
        page.index(label)
        for label in ("加分 · 德治", "扣分 · 德治", "扣分 · 法治", "扣分 · 乡风文明")
    ]
    assert order == sorted(order)
