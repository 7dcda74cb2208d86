"""An admin's catalog round trip through the API: export to Excel, edit, import, see the diff,
adopt; new claims use the new values while old entries keep the version they were posted with."""

import io
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import select

from points import cycles
from points.db import utcnow
from points.models import CatalogRule, CatalogVersion, JournalEntry
from tests.api.conftest import auth

BASE = "/api/v1/villages/{code}/schemes/household/catalog"


def _post_claim(client, world, token="recorder"):
    r = client.post(
        f"/api/v1/villages/{world.a.code}/claims",
        headers=auth(world.tokens[token]),
        json={
            "household_id": world.home1.id,
            "rule_code": "ZZ-09",
            "occurred_on": utcnow().date().isoformat(),
        },
    )
    assert r.status_code == 201, r.json
    return r.json


def test_export_edit_import_diff_adopt(app, client, world):
    base = BASE.format(code=world.a.code)
    admin = auth(world.tokens["admin"])
    old_claim = _post_claim(client, world)
    assert old_claim["points"] == 1
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        cycles.reconcile(s, now=utcnow() + timedelta(days=8))  # the old claim posts under v1

    exported = client.get(f"{base}/export?format=xlsx", headers=admin)
    assert exported.status_code == 200
    book = load_workbook(io.BytesIO(exported.data))
    sheet = book["积分标准"]
    header = [c.value for c in sheet[1]]
    code_col, points_col = header.index("编码"), header.index("分值")
    for row in sheet.iter_rows(min_row=2):
        if row[code_col].value == "ZZ-09":
            row[points_col].value = 3
    buf = io.BytesIO()
    book.save(buf)

    imported = client.post(
        base,
        headers=admin,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(buf.getvalue()), "积分标准.xlsx")},
    )
    assert imported.status_code == 201, imported.json
    assert imported.json["version"] == 2 and imported.json["base"] == 1
    assert any("ZZ-09" in line and "3" in line for line in imported.json["lines"])
    diff = client.get(f"{base}/diff", headers=admin).json
    assert diff["summary"] == imported.json["summary"]

    adopted = client.post(
        f"{base}/2/adopt",
        headers=admin,
        json={"body": "村民代表大会", "adopted_on": utcnow().date().isoformat()},
    )
    assert adopted.status_code == 200 and adopted.json["status"] == "adopted"
    versions = {v["number"]: v["status"] for v in client.get(base, headers=admin).json}
    assert versions == {1: "retired", 2: "adopted"}

    new_claim = _post_claim(client, world)
    assert new_claim["points"] == 3
    with app.extensions["points.sessionmaker"]() as s:
        entry = s.scalar(select(JournalEntry).where(JournalEntry.claim_id == old_claim["id"]))
        rule = s.get(CatalogRule, entry.rule_id)
        version = s.get(CatalogVersion, rule.version_id)
        assert (version.number, rule.points, entry.score_delta) == (1, 1, 1)


def test_a_broken_sheet_changes_nothing(app, client, world):
    base = BASE.format(code=world.a.code)
    admin = auth(world.tokens["admin"])
    book = load_workbook(io.BytesIO(client.get(f"{base}/export", headers=admin).data))
    sheet = book["积分标准"]
    header = [c.value for c in sheet[1]]
    sheet.cell(row=2, column=header.index("分值") + 1, value="很多")
    sheet.cell(row=3, column=header.index("类别") + 1, value="未知类别")
    buf = io.BytesIO()
    book.save(buf)
    response = client.post(
        base,
        headers=admin,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(buf.getvalue()), "bad.xlsx")},
    )
    assert response.status_code == 422
    text = str(response.json)
    assert "第 2 行" in text and "第 3 行" in text
    assert [v["number"] for v in client.get(base, headers=admin).json] == [1]
