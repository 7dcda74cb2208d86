"""The scheduler drafts the month's boards of every due village together (issue 18): one
transaction, each village once, and a village whose drafting fails does not stop the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from api.scheduler import add_hook, reconcile_now
from points import boards, ledger
from points.models import Board
from tests.api.conftest import make_app
from tests.factories import make_group, make_household, make_scheme, make_village

DRAFT_AT = datetime(2026, 12, 1, 1, tzinfo=UTC)  # 09:00 on 1 December in Beijing


def _county(app, n: int) -> list[int]:
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        ids = []
        for _ in range(n):
            village = make_village(s)
            group = make_group(s, village)
            scheme = make_scheme(s, village)
            homes = [make_household(s, village, group, members=1) for _ in range(3)]
            ledger.post_awards(
                s,
                scheme=scheme,
                lines=[ledger.AwardLine(h.id, 2 + i, f"a:{h.id}") for i, h in enumerate(homes)],
                actor_id=None,
                now=datetime(2026, 11, 10, 2, tzinfo=UTC),
            )
            ids.append(village.id)
        return ids


def _drafted(app, ids) -> dict[int, int]:
    with app.extensions["points.sessionmaker"]() as s:
        rows = s.execute(select(Board).where(Board.month == "2026-11")).scalars().all()
        out: dict[int, int] = {}
        for b in rows:
            if b.village_id in ids:
                out[b.village_id] = out.get(b.village_id, 0) + 1
        return out


def test_the_scheduler_drafts_every_village_once_and_reports_each(db_url):
    app = make_app(db_url)
    ids = _county(app, 3)
    seen = []
    add_hook(app, "item_done", lambda _app, result: seen.append(result))
    report = reconcile_now(app, now=DRAFT_AT)
    drafts = [r for r in report.results if r.item.job == boards.JOB]
    assert sorted((r.item.village_id, r.status) for r in drafts) == [(i, "done") for i in ids]
    assert all(r.detail["entries"] == 3 for r in drafts)  # the three households, ranked
    assert [r for r in seen if r.item.job == boards.JOB] == drafts
    assert _drafted(app, ids) == {i: 1 for i in ids}
    again = reconcile_now(app, now=DRAFT_AT + timedelta(hours=1))
    assert [r for r in again.results if r.item.job == boards.JOB] == []
    assert _drafted(app, ids) == {i: 1 for i in ids}


def test_a_failing_village_is_reported_and_the_others_are_drafted(db_url, monkeypatch):
    app = make_app(db_url)
    ids = _county(app, 3)
    real = boards.monthly._top

    def failing(session, schemes, *args):
        if ids[0] in schemes:
            raise RuntimeError("坏数据")
        return real(session, schemes, *args)

    monkeypatch.setattr(boards.monthly, "_top", failing)
    report = reconcile_now(app, now=DRAFT_AT)
    status = {r.item.village_id: r.status for r in report.results if r.item.job == boards.JOB}
    assert [status[i] for i in ids] == ["failed", "done", "done"]
    assert _drafted(app, ids) == {ids[1]: 1, ids[2]: 1}
    monkeypatch.setattr(boards.monthly, "_top", real)
    again = reconcile_now(app, now=DRAFT_AT + timedelta(hours=1))
    assert [(r.item.village_id, r.status) for r in again.results if r.item.job == boards.JOB] == [
        (ids[0], "done")
    ]
    assert _drafted(app, ids) == {i: 1 for i in ids}
