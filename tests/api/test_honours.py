"""Honours end to end through the pages (issue 17's "Done when"): a year of scores, a draft by
one admin, approval by another, publication; the door plaque and certificate open as PDFs in
Chinese and their QR decodes to the household's public record; the resident sees the star, an
appeal is upheld and the correction is what the record then shows. The poster, the 道德模范
roll, 民主评议 and the town's counts as well."""

from __future__ import annotations

import io
import re

import pypdfium2 as pdfium
import pytest
import zxingcpp
from openpyxl import load_workbook

from points.models import HonourList
from tests.api.conftest import make_app
from tests.api.test_cards_pdf import page_text
from tests.honours_world import YEAR, Year


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(app, form):
    client = app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"csrf_token": token, **form}).status_code == 302
    return client


def _post(client, path, **data):
    token = _token(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)


def _read(pdf: bytes) -> tuple[list[str], str, tuple[float, float]]:
    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[0]
        image = page.render(scale=200 / 72).to_pil()
        # QR codes only: a page of text can misread as a 1D barcode.
        codes = [
            r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
        ]
        return codes, page_text(page), page.get_size()
    finally:
        doc.close()


@pytest.fixture
def village(db_url):
    app = make_app(db_url)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        y = Year(s, "honours-a")
        y.score_the_year()
        forms = y.give_logins()
        ids = {
            "code": y.village.code,
            "li": y.member("002").id,
            "zhang": y.member("001").id,
            "zhao": (y.homes["004"].id, y.member("004").id),
        }
    yield app, forms, ids
    app.extensions["points.engine"].dispose()


def _list_id(app, kind):
    with app.extensions["points.sessionmaker"]() as s:
        return max(
            i.id for i in s.query(HonourList).filter_by(kind=kind, year=YEAR, status="published")
        )


def test_a_year_of_scores_to_plaques_an_appeal_and_its_correction(village):
    app, forms, ids = village
    code = ids["code"]
    manage = f"/v/{code}/honours?year={YEAR}"
    secretary, director = _login(app, forms["admin"]), _login(app, forms["admin2"])

    # 民主评议 by the branch secretary, then the year's stars drafted from the scores.
    page = _post(
        secretary, f"/v/{code}/honours/reviews?year={YEAR}", resident_id=ids["zhang"], score="90"
    ).get_data(as_text=True)
    assert "132 · ★★★★" in page
    page = _post(secretary, manage, action="draft", kind="household_stars", year=YEAR)
    text = page.get_data(as_text=True)
    assert "草稿" in text and "★★★★★" in text and "★★★" in text
    list_id = int(re.search(r'name="list_id" value="(\d+)"', text).group(1))

    # The drafter cannot approve; another admin can, then publishes.
    refused = _post(secretary, manage, action="approve", list_id=list_id).get_data(as_text=True)
    assert "起草或推荐本名单的人不能审定" in refused
    _post(director, manage, action="approve", list_id=list_id)
    done = _post(director, manage, action="publish", list_id=list_id).get_data(as_text=True)
    assert "已发布，账本校验码" in done

    public = app.test_client().get(f"/public/{code}/honours/{list_id}").get_data(as_text=True)
    assert "张*山" in public and "李*" in public and "张大山" not in public

    # The plaque (A6 and A5) and the certificate of 李四's household.
    text = secretary.get(f"{manage}&list={list_id}").get_data(as_text=True)
    rows = re.findall(r"李四（002户）.*?entries/(\d+)/plaque\.pdf", text, re.S)
    assert rows, "the published list offers 李四's plaque"
    entry_id = int(rows[0])
    base = f"/v/{code}/honours/{list_id}/entries/{entry_id}"
    for size, width_mm in (("a6", 148), ("a5", 210)):
        pdf = secretary.get(f"{base}/plaque.pdf?size={size}")
        assert pdf.mimetype == "application/pdf"
        codes, words, (w, _h) = _read(pdf.data)
        assert "三星级文明户" in words and "李*" in words and f"{YEAR}年度" in words
        assert round(w / 72 * 25.4) == width_mm  # landscape A6 / A5
        assert len(codes) == 1 and f"/public/{code}/honours/record/" in codes[0]
    cert_codes, cert_words, _ = _read(secretary.get(f"{base}/certificate.pdf").data)
    assert "荣 誉 证 书" in cert_words and "李*" in cert_words
    assert "三星级文明户" in cert_words and "以资鼓励" in cert_words
    assert cert_codes == codes
    record = "/" + codes[0].split("/", 3)[3]
    assert "★★★" in app.test_client().get(record).get_data(as_text=True)
    # Plaques are printed by the 村两委: residents and the public get none.
    assert app.test_client().get(f"{base}/plaque.pdf").status_code == 302  # to sign-in
    resident = _login(app, forms["resident"])
    assert resident.get(f"{base}/plaque.pdf").status_code == 403

    # The resident sees the star on their own page and appeals it.
    home = resident.get(f"/v/{code}/my/").get_data(as_text=True)
    assert "我家荣誉" in home and "三星级文明户" in home
    mine = f"/v/{code}/my/honours"
    sent = _post(resident, mine, list_id=list_id, entry_id=entry_id, reason="三月的好人好事漏记")
    assert "申诉已提交" in sent.get_data(as_text=True)

    # The review group upholds it: a correction with four stars supersedes the list.
    reviewer = _login(app, forms["reviewer"])
    queue = reviewer.get(manage).get_data(as_text=True)
    appeal_id = re.search(r'name="appeal_id" value="(\d+)"', queue).group(1)
    _post(reviewer, manage, action="resolve", appeal_id=appeal_id, uphold="1",
          resolution="核实属实，改为四星", stars="4")  # fmt: skip
    fixed = _list_id(app, "household_stars")
    assert fixed != list_id
    old = app.test_client().get(f"/public/{code}/honours/{list_id}").get_data(as_text=True)
    assert "本名单已被更正" in old
    new = app.test_client().get(f"/public/{code}/honours/{fixed}").get_data(as_text=True)
    assert "核实属实，改为四星" in new
    assert "★★★★" in app.test_client().get(record).get_data(as_text=True)
    assert "四星级文明户" in resident.get(mine).get_data(as_text=True)
    # The poster of the correction carries the head it was published with.
    poster = app.test_client().get(f"/public/{code}/honours/{fixed}/poster.pdf")
    _codes, words, _ = _read(poster.data)
    assert "星级文明户 光荣榜" in words and "账本校验码" in words

    # The period statements (期末对账单) carry the household's published honours, in Excel and
    # in the PDF: the corrected four stars, not the withdrawn three.
    from datetime import date, timedelta

    from points import cycles
    from points.periods import PeriodKind, period_end_utc, period_key

    period = period_key(PeriodKind.QUARTER, date(YEAR, 12, 31))
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        cycles.reconcile(s, now=period_end_utc(PeriodKind.QUARTER, period) + timedelta(minutes=5))
    statement = f"/v/{code}/periods/statement?period={period}&scheme=household&household=002"
    sheet = load_workbook(io.BytesIO(secretary.get(statement + "&format=xlsx").data)).active
    rows = list(sheet.iter_rows(values_only=True))
    header = next(r for r in rows if r and r[0] == "户号")
    line = next(r for r in rows if r and r[0] == "002")
    assert line[header.index("本户荣誉")] == f"{YEAR}年度 四星级文明户"
    _codes, words, _ = _read(secretary.get(statement + "&format=pdf").data)
    assert f"本户荣誉：{YEAR}年度 四星级文明户" in words and "三星级文明户" not in words


def test_awards_the_roll_and_the_towns_counts(village):
    app, forms, ids = village
    code = ids["code"]
    manage = f"/v/{code}/honours?year={YEAR}"
    secretary, director = _login(app, forms["admin"]), _login(app, forms["admin2"])
    reviewer = _login(app, forms["reviewer"])
    # The combining rule is edited with the 民主评议 and kept on the party scheme.
    saved = _post(
        secretary, f"/v/{code}/honours/reviews?year={YEAR}", form="rules", party_weight="60",
        review_weight="40", award_top_n="3", award_min_stars="4", **{"cap_不合格": "0"},
    ).get_data(as_text=True)  # fmt: skip
    assert (
        "已保存党员星级合成规则" in saved
        and 'name="party_weight" inputmode="numeric" size="4" value="60"' in saved
    )
    bad = _post(
        secretary, f"/v/{code}/honours/reviews?year={YEAR}", form="rules", party_weight="101"
    )
    assert "应在 0–100 之间" in bad.get_data(as_text=True)
    for kind in ("awards", "models"):
        text = _post(secretary, manage, action="draft", kind=kind, year=YEAR).get_data(as_text=True)
        list_id = int(re.search(r'name="list_id" value="(\d+)"', text).group(1))
        household, person = ids["zhao"]
        title = "道德模范" if kind == "models" else "优秀群众"
        nominated = _post(
            reviewer, f"{manage}&list={list_id}", action="nominate", list_id=list_id,
            title=title, who=f"{household}:{person}", text="照顾瘫痪婆婆二十年",
            consent_note="本人当面同意",
        ).get_data(as_text=True)  # fmt: skip
        assert "照顾瘫痪婆婆二十年" in nominated
        _post(director, manage, action="approve", list_id=list_id)
        _post(director, manage, action="publish", list_id=list_id)
    awards = app.test_client().get(f"/public/{code}/honours/{_list_id(app, 'awards')}")
    text = awards.get_data(as_text=True)
    assert "最美家庭" in text and "优秀党员" in text and "优秀群众" in text and "赵*" in text
    roll = app.test_client().get(f"/public/{code}/honours/models").get_data(as_text=True)
    assert f"{YEAR} 年度" in roll and "赵*" in roll and "照顾瘫痪婆婆二十年" in roll
    _codes, words, _ = _read(
        app.test_client().get(f"/public/{code}/honours/models/poster.pdf").data
    )
    assert "道德模范榜" in words and "赵*" in words

    # The town sees counts only, on a page and in Excel.
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        from points.auth.passwords import hash_password
        from points.models import RoleAssignment, User

        s.add(User(username="town-sup", display_name="镇督导", password_hash=hash_password("town-pass-99"),
                   roles=[RoleAssignment(role="supervisor", town="城关镇")]))  # fmt: skip
    supervisor = _login(app, {"username": "town-sup", "password": "town-pass-99"})
    assert "各村评星与表彰数量" in supervisor.get("/town/城关镇").get_data(as_text=True)
    page = supervisor.get(f"/town/城关镇/honours?year={YEAR}").get_data(as_text=True)
    assert "东山村" in page and "道德模范 1" in page and "赵" not in page
    sheet = load_workbook(io.BytesIO(supervisor.get(f"/town/城关镇/honours.xlsx?year={YEAR}").data))
    rows = list(sheet.active.iter_rows(values_only=True))
    assert rows[1][-1] == "道德模范" and rows[2][1] == "东山村" and rows[2][-1] == 1
    assert supervisor.get(f"/town/河西镇/honours?year={YEAR}").status_code == 403


def test_the_same_year_over_the_api(village):
    app, forms, ids = village
    code, client = ids["code"], app.test_client()

    def token(who):
        return {
            "Authorization": "Bearer "
            + client.post("/api/v1/auth/token", json=forms[who]).json["token"]
        }

    secretary, director, resident = token("admin"), token("admin2"), token("resident")
    review = client.post(
        f"/api/v1/villages/{code}/party-reviews", headers=secretary,
        json={"resident_id": ids["li"], "year": YEAR, "grade": "合格"},
    )  # fmt: skip
    assert review.status_code == 201 and review.json["grade"] == "合格"
    drafted = client.post(
        f"/api/v1/villages/{code}/honours", headers=secretary,
        json={"kind": "party_stars", "year": YEAR},
    ).json  # fmt: skip
    stars = {e["name"].split("（")[0]: e["stars"] for e in drafted["entries"]}
    assert stars == {"张大山": 5, "李四": 2}  # 李四: (70×90 + 30×80) / 100 = 87
    base = f"/api/v1/villages/{code}/honours/{drafted['id']}"
    refused = client.post(f"{base}/approve", headers=secretary)
    assert refused.status_code == 403 and "起草" in refused.json["message"]
    assert client.post(f"{base}/approve", headers=director).status_code == 200
    published = client.post(f"{base}/publish", headers=director).json
    assert published["status"] == "published" and "民主评议得分" in published["rule"]
    public = client.get(f"/api/v1/public/{code}/honours/{drafted['id']}").json
    assert sorted(e["who"] for e in public["entries"]) == ["张*山", "李*"]
    assert "name" not in public["entries"][0]  # real names stay with staff
    mine = client.get(f"/api/v1/villages/{code}/my/honours", headers=resident).json
    assert [(m["year"], m["label"]) for m in mine] == [(YEAR, "二星党员")]
    bad = client.post(
        f"/api/v1/villages/{code}/honours", headers=secretary, json={"kind": "x", "year": 1}
    )
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"kind", "year"}
    # Per-period 星级文明户 need the scheme's per-period cadence; a draft needs a year or a period.
    per_period = client.post(
        f"/api/v1/villages/{code}/honours", headers=secretary,
        json={"kind": "household_stars", "period": "2025-Q3"},
    )  # fmt: skip
    assert per_period.status_code == 409 and "按年度评定" in per_period.json["message"]
    nothing = client.post(
        f"/api/v1/villages/{code}/honours", headers=secretary, json={"kind": "household_stars"}
    )
    assert nothing.status_code == 422 and "year" in nothing.json["errors"]
    assert mine[0]["when"] == f"{YEAR}年度" and mine[0]["period"] == ""


def test_stars_per_scoring_period_from_the_pages_and_the_command_line(village):
    """A village that designates 星级文明户 each quarter: the admin switches the cadence on the
    honours page (audited), the quarter closes, one admin drafts its list, another approves and
    publishes, the resident's page says which quarter; operators draft and list from the CLI."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from points import cycles
    from points.models import AuditEvent
    from tests.api.test_cycles_cli import points_cli

    app, forms, ids = village
    code = ids["code"]
    manage = f"/v/{code}/honours?year={YEAR}"
    secretary, director = _login(app, forms["admin"]), _login(app, forms["admin2"])
    page = _post(secretary, manage, action="cadence", cadence="period").get_data(as_text=True)
    assert "星级文明户评定周期：按积分周期" in page and 'id="draft-period"' in page
    reviewer = _login(app, forms["reviewer"])
    assert 'id="cadence"' not in reviewer.get(manage).get_data(as_text=True)  # admins only
    with app.extensions["points.sessionmaker"]() as s:
        audited = s.execute(
            select(AuditEvent.summary).where(AuditEvent.action == "honour.cadence")
        ).scalars()
        assert list(audited) == ["星级文明户改为按积分周期评定"]

    # Before the quarter is closed nothing can be drafted for it.
    early = _post(secretary, manage, action="draft", kind="household_stars", period="2025-Q3")
    assert "2025年第三季度尚未结账" in early.get_data(as_text=True)
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        cycles.reconcile(s, now=datetime(2025, 10, 3, 2, tzinfo=UTC))  # Q3 closes (公示 runs on)

    # The CLI lists what the scheduler drafted (Q1, Q2) and drafts nothing twice.
    listed = points_cli(app, "honours", "list", "--village", code, "--year", YEAR)
    assert listed.exit_code == 0, listed.output
    assert "2025年第一季度星级文明户 draft" in listed.output
    assert "2025年第二季度星级文明户 draft" in listed.output
    assert "第三季度" not in listed.output
    refused = points_cli(app, "honours", "draft", "--village", code, "--kind", "awards",
                         "--period", "2025-Q3")  # fmt: skip
    assert refused.exit_code == 1 and "只有星级文明户可以按期评定" in refused.output
    yearly = points_cli(app, "honours", "draft", "--village", code, "--year", YEAR)
    assert yearly.exit_code == 1 and "按积分周期评定" in yearly.output

    page = _post(secretary, manage, action="draft", kind="household_stars", period="2025-Q3")
    text = page.get_data(as_text=True)
    assert "2025年第三季度星级文明户 · 草稿" in text and "★★★★" in text
    list_id = int(re.search(r'name="list_id" value="(\d+)"', text).group(1))
    # The same period from the CLI shows the live list rather than a second one.
    shown = points_cli(app, "honours", "draft", "--village", code, "--year", YEAR,
                       "--period", "2025-Q3")  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert f"2025年第三季度星级文明户 #{list_id}：draft" in shown.output
    assert "★★★★ 李*" in shown.output

    refused = _post(secretary, manage, action="approve", list_id=list_id).get_data(as_text=True)
    assert "起草或推荐本名单的人不能审定" in refused
    _post(director, manage, action="approve", list_id=list_id)
    done = _post(director, manage, action="publish", list_id=list_id).get_data(as_text=True)
    assert "已发布，账本校验码" in done

    public = app.test_client().get(f"/public/{code}/honours/{list_id}").get_data(as_text=True)
    assert "2025年第三季度星级文明户" in public and "李*" in public
    resident = _login(app, forms["resident"])
    mine = resident.get(f"/v/{code}/my/honours").get_data(as_text=True)
    assert "2025年第三季度" in mine and "四星级文明户" in mine
    text = secretary.get(f"{manage}&list={list_id}").get_data(as_text=True)
    entry_id = re.findall(r"李四（002户）.*?entries/(\d+)/plaque\.pdf", text, re.S)[0]
    _codes, words, _ = _read(
        secretary.get(f"/v/{code}/honours/{list_id}/entries/{entry_id}/plaque.pdf").data
    )
    assert "四星级文明户" in words and "2025年第三季度" in words
    listed = points_cli(app, "honours", "list", "--village", code)
    assert f"#{list_id} 2025年第三季度星级文明户 published 2条" in listed.output
