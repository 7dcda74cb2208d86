"""Roster (花名册) import: a 1,000-household sheet in one command; a bad sheet imports nothing."""

import io

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from points.models import Household, JournalEntry, Resident
from tests.api.conftest import auth
from tests.processes import points as _points

HEADER = [
    "户号*",
    "小组*",
    "门牌",
    "姓名*",
    "户主",
    "手机号",
    "党员",
    "党支部",
    "期初积分",
    "身份证号",
]


def _sheet(rows, path=None):
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    if path:
        book.save(path)
        return path
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _big_roster(households=1000):
    rows, n = [], 0
    for h in range(households):
        for m in range(3 if h % 2 else 2):
            n += 1
            rows.append(
                [
                    f"{h + 1:04d}",
                    f"第{h % 6 + 1}组",
                    f"{h + 1}号",
                    f"村民{h}-{m}",
                    "是" if m == 0 else "否",
                    f"139{n:08d}",
                    "是" if n % 20 == 0 else "否",
                    "",
                    30 if m == 0 and h % 3 == 0 else None,
                    "110101199001011234",
                ]
            )
    return rows


@pytest.mark.slow
def test_a_thousand_households_import_in_one_command(db_url, tmp_path, engine):
    assert (
        _points(
            db_url,
            "village",
            "create",
            "--code",
            "dongshan",
            "--name",
            "东山村",
            "--town",
            "城关镇",
            "--county",
            "示范县",
        ).returncode
        == 0
    )
    path = _sheet(_big_roster(), tmp_path / "花名册.xlsx")
    result = _points(db_url, "roster", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "已导入 1000 户、2500 人" in result.stdout and "期初积分 334 户" in result.stdout
    assert "导入农户" in result.stdout  # the progress bar's label
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Household)) == 1000
        assert conn.scalar(select(func.count()).select_from(Resident)) == 2500
        assert (
            conn.scalar(
                select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "opening")
            )
            == 334
        )
        # ID numbers are never stored, not even in part.
        names = conn.execute(select(Resident.name, Resident.phone)).all()
        assert not any("110101" in (n or "") + (p or "") for n, p in names)
    assert _points(db_url, "verify").returncode == 0


def test_a_bad_roster_reports_every_problem_and_imports_nothing(db_url, tmp_path, engine):
    _points(
        db_url,
        "village",
        "create",
        "--code",
        "dongshan",
        "--name",
        "东山村",
        "--town",
        "城关镇",
        "--county",
        "示范县",
    )
    rows = [
        ["0001", "一组", "", "张三", "是", "13900000001", "否", "", 10, ""],
        ["0001", "二组", "", "张四", "是", "13900000001", "否", "", 5, ""],
        ["0002", "", "", "", "也许", "12345", "否", "", -3, ""],
    ]
    result = _points(db_url, "roster", "import", str(_sheet(rows, tmp_path / "bad.xlsx")))
    assert result.returncode == 1
    err = result.stderr
    assert "第 3 行 小组：同一户（户号 0001）的小组与第 2 行不一致" in err
    assert "第 3 行 手机号：与第 2 行手机号重复" in err
    assert "第 3 行 户主：户号 0001 有多个户主" in err
    assert "第 3 行 期初积分：同一户的期初积分只能填一次" in err
    assert "第 4 行 小组：必填" in err and "第 4 行 姓名：必填" in err
    assert "第 4 行 户主：请填“是”或“否”" in err
    assert "第 4 行 手机号：手机号“12345”应为 11 位数字" in err
    assert "第 4 行 期初积分：期初积分应为 0–100000 的整数" in err
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Household)) == 0


def test_roster_upload_through_the_api(client, world):
    token = world.tokens["admin"]
    good = _sheet([["A001", "三组", "5号", "王五", "是", "13900000009", "是", "党支部", 12, ""]])
    response = client.post(
        f"/api/v1/villages/{world.a.code}/roster",
        headers=auth(token),
        data={"file": (io.BytesIO(good), "roster.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    assert response.json == {
        "households": 1,
        "residents": 1,
        "groups_created": 1,
        "opening_entries": 1,
    }
    bad = _sheet([["A002", "三组", "", "", "是", "", "否", "", "", ""]])
    response = client.post(
        f"/api/v1/villages/{world.a.code}/roster",
        headers=auth(token),
        data={"file": (io.BytesIO(bad), "roster.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert response.json["error"] == "roster_invalid"
    assert response.json["errors"]["rows"] == [
        {"row": 2, "column": "姓名", "message": "必填，不能为空"}
    ]


def test_csv_roster_in_gbk_is_read(client, world):
    text = "户号,小组,姓名,户主\nC001,四组,赵六,是\n".encode("gb18030")
    response = client.post(
        f"/api/v1/villages/{world.a.code}/roster",
        headers=auth(world.tokens["admin"]),
        data={"file": (io.BytesIO(text), "名册.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201 and response.json["residents"] == 1
