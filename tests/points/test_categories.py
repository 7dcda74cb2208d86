"""Categories as catalog data: a village adds 乡风文明 in a new version and adopts it like any
change; rules must name one of their catalog's categories; the 黑榜, the period statements and
the dry run follow the catalog's categories, not a fixed list."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from points import catalog, cycles
from points.catalog import Category, check_categories, diff_categories
from points.catalog.dryrun import PastAct, dry_run
from points.catalog.rules import Rule, rule_from_dict
from points.cycles.statements import period_statements
from points.models.catalog import DEFAULT_CATEGORY_ROWS
from tests.factories import adopt_catalog, make_scheme, make_village
from tests.points.test_boards import OCT, RULES, Town

CUSTOM = [
    *catalog.DEFAULT_CATEGORIES,
    Category(name="乡风文明", description="移风易俗、红白喜事简办", black=True),
    Category(name="产业发展", description="带头致富、技能培训"),
]
BANQUET = dict(
    code="XF-51", name="大操大办红白喜事", category="乡风文明", sign=-1, points=5,
    unit="time", review="always", recorder_roles=["admin", "recorder"], subjects=["household"],
)  # fmt: skip


def test_the_engines_defaults_are_what_a_null_list_means_in_the_database():
    assert [
        {"name": c.name, "description": c.description, "black": c.black}
        for c in catalog.DEFAULT_CATEGORIES
    ] == list(DEFAULT_CATEGORY_ROWS)
    # A version stored before categories were catalog data reads as the four defaults.
    assert catalog.categories_from_json(None) == list(catalog.DEFAULT_CATEGORIES)


def test_a_rule_must_name_a_category_of_its_own_catalog():
    rules = [rule_from_dict(r) for r in RULES] + [rule_from_dict(BANQUET)]
    problems = catalog.check_rules(rules)
    assert [(p.position, p.field, p.message) for p in problems] == [
        (5, "category", "类别“乡风文明”不存在，应为德治、自治、法治或党建")
    ]
    assert catalog.check_rules(rules, categories=CUSTOM) == []
    # Dropping a category that rules still use is refused, item by item.
    fewer = [c for c in CUSTOM if c.name != "法治"]
    assert [p.rule_code for p in catalog.check_rules(rules, categories=fewer)] == ["FZ-51"]
    # An automatic rule may watch a category of its catalog.
    auto = Rule(code="AUTO-09", name="当月无大操大办", category="乡风文明", points=2,
                auto="month", auto_watch={"乡风文明"})  # fmt: skip
    assert catalog.check_rules([*rules, auto], categories=CUSTOM) == []


def test_category_lists_are_checked_in_plain_chinese():
    bad = [
        Category(name="德治"),
        Category(name="德治"),
        Category(name="ABC"),
        Category(name=""),
        Category(name="乡风、文明"),
    ]
    assert [(p.position, p.message) for p in check_categories(bad)] == [
        (2, "类别“德治”与第 1 个类别重复"),
        (3, "类别名称“ABC”须用中文，以免与项目编码混淆"),
        (4, "请填写类别名称"),
        (5, "类别名称“乡风、文明”应为不超过 16 个字、不含标点和空格的词"),
    ]
    assert check_categories([])[0].message == "至少要有一个类别"


def test_a_new_category_is_adopted_like_any_change_and_shown_in_the_diff(session, now):
    village = make_village(session)
    scheme = make_scheme(session, village)
    v1 = adopt_catalog(session, scheme, RULES, now=now)
    assert v1.categories is not None and catalog.categories_of(v1) == list(
        catalog.DEFAULT_CATEGORIES
    )
    rules = [*catalog.rules_of(v1), rule_from_dict(BANQUET)]
    draft = catalog.create_draft(
        session, scheme=scheme, rules=rules, title="2027", actor_id=None, now=now,
        categories=CUSTOM,
    )  # fmt: skip
    diff = catalog.diff_versions(v1, draft)
    assert diff.lines()[:2] == [
        "+ 新增类别 乡风文明（移风易俗、红白喜事简办）",
        "+ 新增类别 产业发展（带头致富、技能培训）",
    ]
    assert "类别变动 2 处" in diff.summary()
    catalog.adopt(
        session, version=draft, body="村民代表大会", adopted_on=now.date(), actor_id=None, now=now,
        effective_from=date(2026, 12, 1),
    )  # fmt: skip
    # The next draft starts from the adopted categories, even from a file that lists none.
    again, _ = catalog.save_draft(
        session, scheme=scheme, rules=rules, title="2028", actor_id=None, now=now
    )
    assert [c.name for c in catalog.categories_of(again)] == [c.name for c in CUSTOM]
    assert diff_categories(CUSTOM, [replace(CUSTOM[4], black=False)])[-1] == (
        "* 类别 乡风文明：扣分上黑榜 是 → 否"
    )


def test_the_black_list_follows_the_categories_the_catalog_marks(session):
    t = Town(session)
    # The village's next catalog: 乡风文明's deductions are 村规民约 breaches, 法治's are not.
    black = [
        replace(c, black=c.name == "乡风文明") if c.name in ("法治", "乡风文明") else c
        for c in CUSTOM
    ]
    adopt_catalog(
        session, t.scheme, [*RULES, BANQUET], now=OCT, adopted_on=date(2026, 10, 1),
        categories=black,
    )  # fmt: skip
    h12, h3, *_ = t.homes
    t.post(h12, "XF-51", description="经核实")
    t.post(h3, "FZ-51")
    board = t.draft()
    violations = [e for e in board.entries if e.section == "violation"]
    assert [(e.household_id, e.text) for e in violations] == [(h12.id, "大操大办红白喜事")]


def test_statements_have_a_column_per_catalog_category_in_its_order(session):
    t = Town(session)
    award = dict(
        BANQUET, code="CY-01", name="带头致富", category="产业发展", sign=1, review="never"
    )
    adopt_catalog(
        session, t.scheme, [*RULES, award], now=OCT, adopted_on=date(2026, 10, 1),
        categories=CUSTOM,
    )  # fmt: skip
    t.post(t.homes[0], "CY-01")
    t.post(t.homes[0], "MEI-01")
    cycles.reconcile(session, now=datetime(2027, 1, 1, 0, 5, tzinfo=UTC))
    stmts = period_statements(session, village=t.village, period="2026-Q4")
    # Every category of the catalog in force at the period's end, in its order, even at 0.
    assert stmts.categories == ["德治", "自治", "法治", "党建", "乡风文明", "产业发展"]
    line = next(x for x in stmts.lines if x.household_id == t.homes[0].id)
    assert list(line.awards) == ["德治", "产业发展"]


def test_the_dry_run_follows_a_draft_that_moves_an_item_to_a_new_category():
    litter = rule_from_dict(RULES[3])  # MEI-51 乱倒垃圾, 德治
    watch = Rule(code="AUTO-01", name="当月无乡风文明扣分", category="乡风文明", points=3,
                 auto="month", auto_watch={"乡风文明"})  # fmt: skip
    old = [litter, watch]
    new = [replace(litter, category="乡风文明"), watch]
    acts = [PastAct(subject_id=1, rule_code="MEI-51", on=date(2026, 10, 9))]
    result = dry_run(
        old_rules=old, new_rules=new, acts=acts, period_kind="quarter", subjects=[1, 2],
        auto_from=date(2026, 10, 1), auto_to=date(2026, 11, 1),
    )  # fmt: skip
    scores = {r.subject_id: (r.old_score, r.new_score) for r in result.rows}
    # Under the draft, littering is a 乡风文明 deduction: household 1 loses October's award.
    assert scores == {1: (-2 + 3, -2), 2: (3, 3)}
