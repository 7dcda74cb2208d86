"""红黑榜 through the API, the public pages, the poster and the `points board` commands."""

import io
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from points import cycles
from points.models import Village
from points.periods import LOCAL_TZ, local_date, month_key
from tests.api.conftest import auth
from tests.api.test_cli import _points
from tests.processes import run


def _pdf_text(data: bytes) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = run(["pdftotext", "-layout", "-", "-"], input=data, text=False, check=True)
    return out.stdout.decode()


def test_admin_drafts_edits_publishes_and_a_resident_appeals(client, world):
    admin = auth(world.tokens["admin"])
    draft = client.post(
        "/api/v1/villages/village-a/boards", json={"month": "2026-09"}, headers=admin
    )
    assert draft.status_code == 201, draft.json
    board_id = draft.json["id"]
    url = f"/api/v1/villages/village-a/boards/{board_id}"
    nominated = client.post(
        f"{url}/nominations",
        json={"household_id": world.home1.id, "text": "照顾孤寡老人"},
        headers=admin,
    )
    assert nominated.status_code == 201
    entry = nominated.json["entries"][-1]
    assert entry["source"] == "nomination" and "户）" in entry["name"]
    assert "户" not in entry["who"]  # masked by default: the household number is hidden
    assert client.post(f"{url}/publish", headers=admin).status_code == 409  # not approved
    # Maker ≠ checker: the admin who drafted the board cannot approve it; another admin can.
    refused = client.post(f"{url}/approve", headers=admin)
    assert refused.status_code == 403 and "起草本榜的人不能审定本榜" in refused.json["message"]
    checker = auth(world.tokens["admin2"])
    assert client.post(f"{url}/approve", headers=checker).json["status"] == "approved"
    published = client.post(f"{url}/publish", headers=admin).json
    head = client.get("/api/v1/villages/village-a/ledger/head", headers=admin).json
    assert (published["head_seq"], published["head_hash"]) == (head["seq"], head["hash"])

    public = client.get(f"/api/v1/public/village-a/boards/{board_id}").json
    assert [e["who"] for e in public["entries"]] == [entry["who"]]
    assert "name" not in public["entries"][0]

    resident = auth(world.tokens["resident"])
    appealed = client.post(
        f"{url}/entries/{entry['id']}/appeals", json={"reason": "我家不愿上榜"}, headers=resident
    )
    assert appealed.status_code == 201
    resolved = client.post(
        f"/api/v1/villages/village-a/board-appeals/{appealed.json['id']}/resolve",
        json={"uphold": True, "resolution": "尊重本人意愿"},
        headers=auth(world.tokens["reviewer"]),
    ).json
    fixed = client.get(f"/api/v1/public/village-a/boards/{resolved['correction_board_id']}").json
    assert fixed["entries"] == [] and fixed["correction"]["of"] == board_id
    archive = client.get("/api/v1/public/village-a/boards").json
    assert {(b["id"], b["status"]) for b in archive} == {
        (board_id, "superseded"),
        (fixed["id"], "published"),
    }
    page = client.get("/public/village-a/board/2026-09")
    assert "更正榜" in page.text and fixed["head_hash"] in page.text


def test_public_page_pdf_and_xlsx_show_the_board_in_its_privacy_mode(client, world):
    admin = auth(world.tokens["admin"])
    client.patch("/api/v1/villages/village-a", json={"privacy_mode": "group"}, headers=admin)
    board_id = client.post(
        "/api/v1/villages/village-a/boards", json={"month": "2026-08"}, headers=admin
    ).json["id"]
    url = f"/api/v1/villages/village-a/boards/{board_id}"
    client.post(
        f"{url}/nominations",
        json={"household_id": world.home1.id, "text": "热心公益"},
        headers=admin,
    )
    client.post(f"{url}/approve", headers=auth(world.tokens["admin2"]))
    board = client.post(f"{url}/publish", headers=admin).json
    head = f"{board['head_seq']}:{board['head_hash']}"

    # The village then names people: the published board does not change.
    client.patch("/api/v1/villages/village-a", json={"privacy_mode": "named"}, headers=admin)
    page = client.get("/public/village-a/board/2026-08")
    assert page.status_code == 200
    assert "一组" in page.text and "热心公益" in page.text and head in page.text
    assert "扣分次数少" in page.text and "@page" in page.text
    assert world.home1.members[0].name not in page.text and "13800001111" not in page.text
    pdf = client.get(f"/api/v1/public/village-a/boards/{board_id}/poster.pdf?size=a3")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = _pdf_text(pdf.data)
    assert "红黑榜" in text and "一组" in text and head in text
    assert world.home1.members[0].name not in text
    sheet = load_workbook(
        io.BytesIO(client.get(f"/api/v1/public/village-a/boards/{board_id}/board.xlsx").data)
    ).active
    assert sheet["B2"].value == head
    assert client.get("/public/village-a/boards").status_code == 200

    withdrawn = client.post(f"{url}/withdraw", json={"reason": "名单有误"}, headers=admin)
    assert withdrawn.json["status"] == "withdrawn"
    page = client.get("/public/village-a/board/2026-08")
    assert "已于" in page.text and "名单有误" in page.text and "热心公益" not in page.text
    assert client.get(f"/api/v1/public/village-a/boards/{board_id}/poster.pdf").status_code == 404


def test_demo_month_is_drafted_on_the_first_and_its_head_matches_verify(db_url):
    """The issue's 'done when': demo data, reconcile on the 1st, publish, print, verify."""
    assert _points(db_url, "demo").returncode == 0
    from points.db import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    today = local_date(datetime.now(UTC))
    month = month_key(today)
    # 00:30 on the 1st of the next month in Beijing (from the local date: late on a month's
    # last day in UTC it is already the 1st in Beijing).
    first = datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=LOCAL_TZ)
    with make_sessionmaker(engine)() as s:
        report = cycles.reconcile(s, now=first + timedelta(minutes=30))
        assert [r.item.key for r in report.done if r.item.job == "board_draft"] == [
            f"board:{month}"
        ]
        s.commit()
    assert _points(db_url, "board", "approve", month).returncode == 0
    published = _points(db_url, "board", "publish", "--village", "demo", month)
    assert published.returncode == 0, published.stderr
    printed = published.stdout.strip().splitlines()[-1].removeprefix("head ")
    verify = _points(db_url, "verify", "--village", "demo", "--head", printed)
    assert verify.returncode == 0 and f"demo: head {printed}" in verify.stdout

    from api import create_app

    app = create_app({"DATABASE_URL": db_url, "TESTING": True, "AUTO_MIGRATE": False})
    page = app.test_client().get(f"/public/demo/board/{month}")
    assert page.status_code == 200 and printed in page.text
    with make_sessionmaker(engine)() as s:
        board_id = s.execute(text("SELECT id FROM boards WHERE status = 'published'")).scalar_one()
        masked = s.query(Village).filter_by(code="demo").one().privacy_mode
        # In the first hours of a month (Beijing) the demo has no score or deed in it yet: the
        # board then has only its party stars, and no 红榜 section.
        reds = s.execute(
            text(
                "SELECT count(*) FROM board_entries"
                " WHERE board_id = :b AND kind = 'red' AND section != 'party'"
            ),
            {"b": board_id},
        ).scalar_one()
    pdf = app.test_client().get(f"/api/v1/public/demo/boards/{board_id}/poster.pdf")
    poster = _pdf_text(pdf.data)
    assert printed in poster and "红黑榜" in poster and "党员星级" in poster
    assert ("红榜 ·" in poster) == (reds > 0)
    # The code is printed on the same page as its label (pdftotext ends pages with \f).
    (footer_page,) = [page for page in poster.split("\f") if "账本校验码" in page]
    assert printed in footer_page
    if masked == "masked":
        assert "*" in poster
    app.extensions["points.engine"].dispose()
    engine.dispose()
