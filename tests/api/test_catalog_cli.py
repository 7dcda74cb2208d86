"""`points catalog …` as an admin runs it: export, edit in Excel, import, diff, adopt, list."""

from __future__ import annotations

import json
from datetime import date
from functools import partial

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from openpyxl import load_workbook
from sqlalchemy import func, select

from api.cli import main
from points import catalog
from points import demo as demo_module
from points.catalog.rules import rule_from_dict
from points.demo import CATALOG_DIR
from points.models import AuditEvent, CatalogRule, CatalogVersion, Scheme
from tests.api.conftest import make_app
from tests.factories import make_scheme, make_village

NEW_ROW = [
    "SHAN-99",
    "帮邻居抢收抢种",
    "德治",
    "积善",
    "农忙时义务帮工",
    "加分",
    3,
    None,
    None,
    "天",
    None,
    9,
    None,
    None,
    "是",
    "必须",
    None,
    "村两委、网格员、村民本人",
    "农户、村民个人",
    "是",
]


@pytest.fixture
def app(db_url):
    app = make_app(db_url, AUTO_MIGRATE=False)
    yield app
    app.extensions["points.engine"].dispose()


@pytest.fixture
def points(app):
    """Run `points …` in-process against the test database; return the click result."""
    runner = CliRunner()
    info = ScriptInfo(create_app=lambda: app)

    def run(*args, input=None):
        return runner.invoke(main, list(map(str, args)), obj=info, input=input)

    return run


@pytest.fixture
def village(app, now):
    """兴隆村 with its household scheme and version 1 (the default catalog) adopted in January."""
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        village = make_village(s, "xinglong", name="兴隆村")
        scheme = make_scheme(s, village, name="户积分")
        data = json.loads((CATALOG_DIR / "household.json").read_text(encoding="utf-8"))
        v1 = catalog.create_draft(
            s,
            scheme=scheme,
            rules=[rule_from_dict(r) for r in data["rules"]],
            title="2026 年积分标准",
            actor_id=None,
            now=now,
        )
        catalog.adopt(
            s, version=v1, body="村民代表大会", adopted_on=date(2026, 1, 8), actor_id=None, now=now
        )
    return village


def versions(app) -> list[tuple[int, str, int]]:
    with app.extensions["points.sessionmaker"]() as s:
        rows = s.execute(
            select(CatalogVersion.number, CatalogVersion.status, func.count(CatalogRule.id))
            .join(CatalogRule, isouter=True)
            .group_by(CatalogVersion.id)
            .order_by(CatalogVersion.number)
        ).all()
        return [tuple(r) for r in rows]


def test_the_admin_path_export_edit_import_diff_adopt(app, points, village, tmp_path):
    path = tmp_path / "积分标准.xlsx"
    exported = points("catalog", "export", "--scheme", "household", path)
    assert exported.exit_code == 0, exported.output
    assert "已导出户积分第 1 版（已通过，85 项）" in exported.output

    # The admin edits in Excel: XIAO-01 is worth 8 now (cap raised to match) and a rule is added.
    book = load_workbook(path)
    sheet = book["积分标准"]
    assert sheet["A2"].value == "XIAO-01" and sheet["G2"].value == 5
    sheet["G2"], sheet["L2"] = 8, 8
    sheet.append(NEW_ROW)
    book.save(path)

    imported = points("catalog", "import", path)
    assert imported.exit_code == 0, imported.output
    assert "已新建户积分第 2 版草案" in imported.output and "共 86 项" in imported.output
    assert "与第 1 版相比：新增 1 项，删除 0 项，修改 1 项" in imported.output
    assert versions(app) == [(1, "adopted", 85), (2, "draft", 86)]

    diff = points("catalog", "diff", "--scheme", "household")
    assert diff.exit_code == 0, diff.output
    assert "* 修改 XIAO-01 孝老爱亲，悉心照料家中老人：分值 5 → 8；每月上限 5 → 8" in diff.output
    assert (
        "+ 新增 SHAN-99 帮邻居抢收抢种（德治·积善，加分，每天 3 分，每月最多 9 分）" in diff.output
    )

    adopt = points(
        "catalog", "adopt", "--scheme", "household", "--version", 2,
        "--body", "村民代表大会", "--date", "2026-11-20", "--note", "第 3 次会议",
        input="y\n",
    )  # fmt: skip
    assert adopt.exit_code == 0, adopt.output
    # The diff is shown before the question, the result after it.
    assert (
        adopt.output.index("分值 5 → 8")
        < adopt.output.index("确认")
        < adopt.output.index("第 2 版已由村民代表大会于 2026-11-20 通过")
    )

    listed = points("catalog", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "兴隆村 [xinglong] · 户积分 [household]"
    assert lines[1].startswith(
        "  第 1 版  已停用  85 项  2026 年积分标准  2026-01-08 村民代表大会通过"
    )
    assert lines[1].endswith("2026-11-20 起停用")
    assert lines[2].startswith("  第 2 版  已通过  86 项")

    # New acts use version 2; acts before the 20th still find version 1 and its values.
    with app.extensions["points.sessionmaker"]() as s:
        scheme = s.execute(select(Scheme).where(Scheme.village_id == village.id)).scalar_one()
        old, rule = catalog.find_rule(s, scheme=scheme, code="XIAO-01", on=date(2026, 11, 19))
        assert (old.number, rule.points) == (1, 5)
        new, rule = catalog.find_rule(s, scheme=scheme, code="XIAO-01", on=date(2026, 11, 20))
        assert (new.number, rule.points, new.note) == (2, 8, "第 3 次会议")
        actions = s.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars().all()
        assert actions == ["catalog.import", "catalog.adopt"]


def test_a_broken_import_lists_every_problem_exits_1_and_changes_nothing(
    app, points, village, tmp_path
):
    path = tmp_path / "broken.xlsx"
    points("catalog", "export", "--scheme", "household", path)
    book = load_workbook(path)
    sheet = book["积分标准"]
    sheet["G2"] = "八"
    sheet["C3"] = "德行"
    sheet["H4"], sheet["I4"], sheet["G4"] = 9, 2, None
    sheet["A6"] = "XIAO-01"
    sheet["B7"] = None
    book.save(path)

    result = points("catalog", "import", path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "工作表 积分标准 第 2 行 G 列（分值）：应填整数，现为“八”",
        "工作表 积分标准 第 3 行 C 列（类别）：类别“德行”不存在，应为德治、自治、法治或党建",
        "工作表 积分标准 第 4 行 H 列（最低分）：最低分 9 不能高于最高分 2",
        "工作表 积分标准 第 6 行 A 列（编码）：编码“XIAO-01”与第 2 行重复",
        "工作表 积分标准 第 7 行 B 列（名称）：必填，不能为空",
        "共 5 个问题，未做任何改动。请改正后重新导入。",
    ]
    assert versions(app) == [(1, "adopted", 85)]


def test_importing_again_replaces_the_open_draft(app, points, village, tmp_path):
    path = tmp_path / "catalog.yaml"
    assert points("catalog", "export", "--scheme", "household", path).exit_code == 0
    first = points("catalog", "import", path, "--title", "2027 年积分标准")
    assert "已新建户积分第 2 版草案“2027 年积分标准”" in first.output
    assert "与第 1 版相比：没有变化" in first.output
    again = points("catalog", "import", path)
    assert again.exit_code == 0, again.output
    assert "已更新户积分第 2 版草案" in again.output
    assert versions(app) == [(1, "adopted", 85), (2, "draft", 85)]


def test_declining_the_confirmation_adopts_nothing(app, points, village, tmp_path):
    path = tmp_path / "catalog.xlsx"
    points("catalog", "export", "--scheme", "household", path)
    points("catalog", "import", path)
    args = ["--scheme", "household", "--version", 2, "--body", "村民代表大会"]
    declined = points("catalog", "adopt", *args, "--date", "2026-11-20", input="n\n")
    assert declined.exit_code == 1
    assert versions(app) == [(1, "adopted", 85), (2, "draft", 85)]

    too_early = points("catalog", "adopt", *args, "--date", "2025-12-01", "--yes")
    assert too_early.exit_code == 1
    assert "生效日期须晚于现行第 1 版的生效日期 2026-01-08" in too_early.stderr

    again = points("catalog", "adopt", "--scheme", "household", "--version", 1, "--body", "x")
    assert again.exit_code == 2  # --date is required
    adopted = points("catalog", "adopt", *args, "--date", "2026-11-20", "--yes")
    assert adopted.exit_code == 0, adopted.output
    twice = points("catalog", "adopt", *args, "--date", "2026-11-21", "--yes")
    assert twice.exit_code == 1 and "只有草案可以表决通过" in twice.stderr


def test_the_village_must_be_named_when_there_are_several(app, points, village, tmp_path):
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        make_village(s, "dongfeng", name="东风村")
    result = points("catalog", "list")
    assert result.exit_code == 1
    assert "有多个村庄，请用 --village 指定：dongfeng、xinglong" in result.stderr
    named = points("catalog", "list", "--village", "dongfeng")
    assert named.exit_code == 0 and "东风村" not in named.output  # no schemes yet
    nothing = points(
        "catalog", "export", "--village", "dongfeng", "--scheme", "household", "x.xlsx"
    )
    assert nothing.exit_code == 1 and "积分方案“household”不存在" in nothing.stderr


def test_dryrun_says_plainly_when_there_is_nothing_to_replay(app, points, village, tmp_path):
    path = tmp_path / "catalog.xlsx"
    points("catalog", "export", "--scheme", "household", path)
    points("catalog", "import", path)
    result = points("catalog", "dryrun", "--scheme", "household", "--months", 6)
    assert result.exit_code == 0, result.output
    assert "试算：户积分第 2 版，近 6 个月" in result.output
    assert "没有注明积分标准项目的入账记录，无法试算" in result.output


def test_demo_adopts_the_default_catalogs(app, points, monkeypatch):
    # The catalogs adopted do not depend on the village's size: the real command on a small
    # village (6 households, a month of history). The full-size demo is proved by tests/api/
    # test_cli.py (`points demo`, 60 户) and test_cycles_cli.py (60 statements).
    small = partial(demo_module.create_demo_village, households=6, months=1)
    monkeypatch.setattr(demo_module, "create_demo_village", small)
    assert points("demo").exit_code == 0
    listed = points("catalog", "list").output
    assert "第 1 版  已通过  85 项  农户积分默认目录" in listed
    assert "第 1 版  已通过  25 项  党员积分默认目录" in listed
    assert listed.count("村民代表大会通过") == 2
