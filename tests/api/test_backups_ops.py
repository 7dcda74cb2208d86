"""Backups, restore, moving a village and /metrics as an operator uses them."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import timedelta

from alembic import command
from sqlalchemy import select, text

from api import create_app
from api.cli import main
from api.migrate import alembic_config, upgrade
from api.scheduler import Ticker, reconcile_now
from points import ledger
from points.backups import read_heads, read_manifest
from points.db import make_engine, make_sessionmaker, utcnow
from points.ledger.verify import verify
from points.models import Backup, Household, Scheme
from tests.api.conftest import make_app
from tests.points.backup_world import make_history
from tests.processes import run


def points_cli(app, *args, input=None):
    return app.test_cli_runner().invoke(
        main, [str(a) for a in args], input=input, catch_exceptions=False
    )


def _app(db_url, tmp_path, **config):
    (tmp_path / "usb").mkdir(exist_ok=True)  # the stick is plugged in
    return make_app(
        db_url,
        BACKUP_DIR=str(tmp_path / "usb"),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        **config,
    )


def _history(app, code, now=None):
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        return make_history(
            s, code=code, now=now or utcnow(), evidence_root=app.config["EVIDENCE_DIR"]
        )


def _tamper(app):
    engine = app.extensions["points.engine"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER postings_append_only ON postings"))
        else:
            conn.execute(text("DROP TRIGGER postings_append_only_update"))
        conn.execute(text("UPDATE postings SET amount = amount + 7 WHERE id = 2"))


def test_backup_then_restore_refuses_without_yes_then_restores_with_equal_heads(db_url, tmp_path):
    app = _app(db_url, tmp_path)
    _history(app, "east")
    _history(app, "west")
    made = points_cli(app, "backup")
    assert made.exit_code == 0, made.output
    (file,) = (tmp_path / "usb").glob("points-*-manual-*.zip")
    with app.extensions["points.sessionmaker"]() as s:
        heads = verify(s).heads
    assert f"east: 账链头 {heads['east'][0]}:{heads['east'][1]}" in made.output
    _tamper(app)
    refused = points_cli(app, "restore", file, input="n\n")
    assert refused.exit_code == 1 and "未确认" in refused.output
    with app.extensions["points.sessionmaker"]() as s:
        assert not verify(s).ok  # nothing was restored
    restored = points_cli(app, "restore", file, "--yes")
    assert restored.exit_code == 0, restored.output
    for code, (seq, hash_) in heads.items():
        short = f"{seq}:{hash_[:16]}"
        assert f"{code} | {short} | {short} | （无） | 一致" in restored.output
    assert "OK: 校验通过" in restored.output
    with app.extensions["points.sessionmaker"]() as s:
        report = verify(s)
    assert report.ok and report.heads == heads


def test_backup_to_a_missing_stick_fails_in_chinese(db_url, tmp_path):
    app = _app(db_url, tmp_path)
    result = points_cli(app, "backup", tmp_path / "no-stick" / "backups")
    assert result.exit_code == 1 and "U 盘" in result.output


def test_scheduler_takes_the_daily_backup_once_across_restarts(db_url, tmp_path):
    first = _app(db_url, tmp_path)
    _history(first, "east")
    Ticker(first).tick()
    Ticker(first).tick()
    restarted = _app(db_url, tmp_path)  # a new process on the same database and folder
    Ticker(restarted).tick()
    files = list((tmp_path / "usb").glob("points-*-daily-*.zip"))
    assert len(files) == 1
    with restarted.extensions["points.sessionmaker"]() as s:
        rows = s.execute(select(Backup)).scalars().all()
    assert [r.reason for r in rows] == ["daily"] and rows[0].location == str(files[0])


def test_a_period_close_is_backed_up_first_once(db_url, tmp_path):
    app = _app(db_url, tmp_path)
    now = utcnow()
    _history(app, "east", now=now)
    close_at = now + timedelta(days=100)  # past the end of this quarter
    report = reconcile_now(app, now=close_at)
    assert any(r.item.job == "period_close" and r.status == "done" for r in report.results)
    reconcile_now(app, now=close_at + timedelta(minutes=2))
    (file,) = (tmp_path / "usb").glob("points-*-period_close-*.zip")
    with app.extensions["points.sessionmaker"]() as s:
        row = s.execute(select(Backup)).scalar_one()
    # Taken before the close: the head it recorded is the head before any expiry entry.
    assert row.reason == "period_close" and row.location == str(file)
    assert row.heads["east"][0] == 8


def test_an_embedded_database_is_backed_up_before_it_is_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'points.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine)() as s, s.begin():
        make_history(s, code="east", now=utcnow())
    with make_sessionmaker(engine)() as s:
        head = read_heads(s)["east"]
    # One migration behind, as a laptop is before an update (the data is built with today's
    # models, then the newest migration is stepped back).
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")
        conn.commit()
    engine.dispose()
    (tmp_path / "usb").mkdir()
    app = create_app(
        {
            "DATABASE_URL": url,
            "TESTING": True,
            "SECRET_KEY": "x",
            "BACKUP_DIR": str(tmp_path / "usb"),
            "EVIDENCE_DIR": str(tmp_path / "evidence"),
        }
    )  # AUTO_MIGRATE: the start-up upgrade
    (file,) = (tmp_path / "usb").glob("points-*-migration-*.zip")
    with app.extensions["points.sessionmaker"]() as s:
        row = s.execute(select(Backup)).scalar_one()
    assert row.reason == "migration" and row.heads == {"east": list(head)}
    assert read_manifest(file)["heads"] == {"east": list(head)}
    app.extensions["points.engine"].dispose()


def test_village_export_and_import_through_the_cli(db_url, tmp_path):
    laptop_url = f"sqlite:///{tmp_path / 'laptop.db'}"
    laptop = make_app(laptop_url, AUTO_MIGRATE=True, EVIDENCE_DIR=str(tmp_path / "laptop-evidence"))
    _history(laptop, "hill")
    with laptop.extensions["points.sessionmaker"]() as s:
        head = verify(s).heads["hill"]
    out = tmp_path / "hill.zip"
    exported = points_cli(laptop, "village", "export", "--village", "hill", out)
    assert exported.exit_code == 0, exported.output
    assert f"账链头 {head[0]}:{head[1]}" in exported.output
    county = _app(db_url, tmp_path)
    _history(county, "east")
    _history(county, "west")
    imported = points_cli(county, "village", "import", out)
    assert imported.exit_code == 0, imported.output
    assert f"导入后账链头 {head[0]}:{head[1]}" in imported.output
    assert "OK: 校验通过" in imported.output
    again = points_cli(county, "village", "import", out)
    assert again.exit_code == 1 and "已存在" in again.output
    laptop.extensions["points.engine"].dispose()


def test_metrics_and_request_logs(db_url, tmp_path, caplog):
    app = _app(db_url, tmp_path)
    _history(app, "east")
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="points.requests"):
        assert client.get("/public/east/board").status_code in (200, 302, 404)
        client.get("/v/east/")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "points.requests"]
    assert {"village", "route", "status", "duration_ms", "method", "ts"} <= set(lines[-1])
    assert lines[-1]["village"] == "east" and lines[-1]["route"] == "/v/<code>/"
    assert "/v/east" not in json.dumps(lines)  # routes, not paths
    before = client.get("/metrics").get_data(as_text=True)
    assert "points_backup_age_seconds" not in before  # never backed up
    points_cli(app, "backup")
    with app.extensions["points.sessionmaker"]() as s, s.begin():
        scheme = s.execute(select(Scheme)).scalars().first()
        home = s.execute(select(Household)).scalars().first()
        ledger.award(
            s,
            scheme=scheme,
            subject_id=home.id,
            points=1,
            idem_key="m1",
            actor_id=None,
            now=utcnow(),
        )
    body = client.get("/metrics").get_data(as_text=True)
    assert 'points_http_requests_total{method="GET",route="/v/<code>/",status="302"}' in body
    assert "points_http_request_duration_seconds_bucket" in body
    assert 'points_ledger_entries_total{village="east"} 9.0' in body
    age = next(
        float(line.split()[-1])
        for line in body.splitlines()
        if line.startswith("points_backup_age_seconds ")
    )
    assert 0 <= age < 600
    reconcile_now(app, now=utcnow() + timedelta(days=100))
    body = client.get("/metrics").get_data(as_text=True)
    assert 'points_scheduler_items_total{job="period_close",status="done"} 1.0' in body


def test_restore_replaces_a_database_file_that_no_longer_opens(tmp_path):
    """The laptop's disk mangled the file: the app must still start to restore it."""
    url = f"sqlite:///{tmp_path / 'points.db'}"
    app = _app(url, tmp_path, AUTO_MIGRATE=True)
    _history(app, "east")
    assert points_cli(app, "backup").exit_code == 0
    (file,) = (tmp_path / "usb").glob("points-*.zip")
    with app.extensions["points.sessionmaker"]() as s:
        head = verify(s).heads["east"]
    app.extensions["points.engine"].dispose()
    (tmp_path / "points.db").write_bytes(b"\x00garbage" * 4096)
    for extra in ("points.db-wal", "points.db-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    restored = run(
        [sys.executable, "-m", "api.cli", "restore", str(file), "--yes"],
        env=dict(
            os.environ,
            POINTS_DATABASE_URL=url,
            POINTS_BACKUP_DIR=str(tmp_path / "usb"),
            POINTS_EVIDENCE_DIR=str(tmp_path / "evidence"),
        ),
    )
    assert restored.returncode == 0, restored.stderr
    assert f"east | {head[0]}:{head[1][:16]} | {head[0]}:{head[1][:16]}" in restored.stdout
    assert (tmp_path / "points.db.damaged-1").read_bytes().startswith(b"\x00garbage")
