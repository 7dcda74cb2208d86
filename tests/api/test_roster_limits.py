"""Hostile rosters: a zip bomb, too many rows, too many problems. Each is refused with a short
answer and nothing imported, and the server never inflates the bomb to find out."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy import func, select

from api.org.roster_io import MAX_ROWS
from points.models import Household
from points.org.roster import MAX_PROBLEMS_SHOWN
from tests.api.conftest import auth
from tests.api.test_roster import _sheet


def _upload(client, world, data: bytes, name: str):
    return client.post(
        f"/api/v1/villages/{world.a.code}/roster",
        headers=auth(world.tokens["admin"]),
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _households(app, world) -> int:
    with app.extensions["points.sessionmaker"]() as s:
        return s.execute(
            select(func.count()).select_from(Household).where(Household.village_id == world.a.id)
        ).scalar_one()


def _bomb() -> bytes:
    """A real .xlsx whose sheet holds one 60 MB cell: well under 1 MB on the wire."""
    good = _sheet([["B001", "一组", "", "王五", "是", "", "否", "", "", ""]])
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(good)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                huge = b'<row r="3"><c r="A3" t="inlineStr"><is><t>' + b"A" * (60 << 20)
                body = body.replace(b"</sheetData>", huge + b"</t></is></c></row></sheetData>")
            dst.writestr(item.filename, body)
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_inflated(app, client, world):
    bomb = _bomb()
    assert len(bomb) < 1 << 20
    before = _households(app, world)
    response = _upload(client, world, bomb, "roster.xlsx")
    assert response.status_code == 422
    assert response.json["error"] == "roster_invalid"
    assert "解压后过大" in response.json["errors"]["rows"][0]["message"]
    assert len(response.data) < 2000  # nothing of the file is echoed
    assert _households(app, world) == before


def test_a_roster_over_the_row_limit_is_refused_by_its_size(app, client, world):
    # 20,000 rows is several villages' worth of residents (README, docs/deploy.md).
    assert MAX_ROWS == 20_000
    lines = ["户号,小组,姓名,户主"] + [f"X{n:06d},一组,,是" for n in range(MAX_ROWS + 1)]
    response = _upload(client, world, "\n".join(lines).encode(), "big.csv")
    assert response.status_code == 422
    assert response.json["errors"]["rows"] == [
        {"row": 1, "column": "文件", "message": f"一次最多导入 {MAX_ROWS} 行"}
    ]


def test_the_problems_echoed_are_capped_and_counted(app, client, world):
    # 2,000 rows, each without a name: every one is a problem, the answer lists the first ones.
    lines = ["户号,小组,姓名,户主"] + [f"Y{n:05d},一组,,是" for n in range(2000)]
    response = _upload(client, world, "\n".join(lines).encode(), "bad.csv")
    assert response.status_code == 422
    rows = response.json["errors"]["rows"]
    assert len(rows) == MAX_PROBLEMS_SHOWN and rows[0]["row"] == 2
    assert response.json["message"] == (
        f"花名册有 2000 处问题，未导入任何数据（只列出前 {MAX_PROBLEMS_SHOWN} 处）"
    )


def test_an_overlong_cell_is_named_not_echoed(app, client, world):
    lines = ["户号,小组,姓名,户主", "Z001,一组," + "长" * 100_000 + ",是"]
    response = _upload(client, world, "\n".join(lines).encode(), "long.csv")
    assert response.status_code == 422
    assert {"row": 2, "column": "第 3 列", "message": "内容超过 200 字"} in (
        response.json["errors"]["rows"]
    )
    assert len(response.data) < 2000
