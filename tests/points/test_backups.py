"""Backups on both databases: once a day exactly, rotation, and a restore with equal heads."""

from __future__ import annotations

import threading
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from points import backups, ledger
from points.db import make_engine, make_sessionmaker
from points.ledger.verify import verify
from points.models import Backup, Scheme
from tests.points.backup_world import PHOTO, make_history


@pytest.fixture
def folders(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (tmp_path / "backups").mkdir()
    return tmp_path / "backups", evidence


def _daily(session_factory, db_url, folder, evidence, now):
    with session_factory() as s, s.begin():
        return backups.take_backup(
            s,
            folder=folder,
            database_url=db_url,
            evidence_root=evidence,
            now=now,
            reason=backups.DAILY,
            slot=backups.daily_slot(now),
        )


def test_daily_backup_is_taken_once_a_day_by_two_schedulers_and_after_a_restart(
    db_url, session_factory, folders, now
):
    folder, evidence = folders
    with session_factory() as s, s.begin():
        make_history(s, code="east", now=now, evidence_root=evidence)
    # Two schedulers (two engines, as two processes would have) take the day's backup at once.
    engines = [make_engine(db_url) for _ in range(2)]
    results = []

    def scheduler(engine):
        results.append(_daily(make_sessionmaker(engine), db_url, folder, evidence, now))

    threads = [threading.Thread(target=scheduler, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2
    assert sum(r is not None for r in results) == 1
    # A restart later the same (Beijing) day: nothing more.
    restarted = make_engine(db_url)
    later = now + timedelta(hours=10)  # 23:00 in Beijing, still the 25th
    assert _daily(make_sessionmaker(restarted), db_url, folder, evidence, later) is None
    # The next day: a second one.
    taken = _daily(make_sessionmaker(restarted), db_url, folder, evidence, now + timedelta(days=1))
    assert taken is not None
    for e in [*engines, restarted]:
        e.dispose()
    files = sorted(p.name for p in folder.glob("points-*.zip"))
    assert len(files) == 2
    with session_factory() as s:
        rows = s.execute(select(Backup).order_by(Backup.id)).scalars().all()
        head = verify(s, village_code="east").heads["east"]
    assert [r.slot for r in rows] == ["daily:2026-11-25", "daily:2026-11-26"]
    assert rows[-1].heads == {"east": [head[0], head[1]]}
    with zipfile.ZipFile(taken.path) as zf:
        names = zf.namelist()
        photo = [n for n in names if n.startswith("evidence/")]
        assert len(photo) == 1 and zf.read(photo[0]) == PHOTO
        assert "manifest.json" in names


def test_rotation_keeps_fourteen_days_and_twelve_months(db_url, session_factory, folders, now):
    folder, evidence = folders
    with session_factory() as s, s.begin():
        make_history(s, code="east", now=now, evidence_root=evidence, awards=1)
    # Daily backups for the last 20 days, and one on the 10th of each of the 15 months before.
    days = [now - timedelta(days=d) for d in range(19, -1, -1)]
    months = [
        (now.replace(day=10) - timedelta(days=31 * m)).replace(day=10) for m in range(15, 0, -1)
    ]
    for when in [*months, *days]:
        _daily(session_factory, db_url, folder, evidence, when)
    with session_factory() as s, s.begin():
        backups.take_backup(
            s,
            folder=folder,
            database_url=db_url,
            evidence_root=evidence,
            now=now + timedelta(hours=1),
            reason=backups.MANUAL,
        )
    kept = sorted(folder.glob("points-*.zip"))
    stamps = sorted(p.name.split("-")[1] for p in kept)
    # The newest of each of the 14 most recent days (today's manual one, not its daily) ...
    assert [s[:8] for s in stamps[-14:]] == [
        (now - timedelta(days=13 - i)).strftime("%Y%m%d") for i in range(14)
    ]
    assert stamps[-1] == (now + timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    # ... and the newest of each of the 12 most recent months: 2026-11 is among the days, and
    # 2025-12 .. 2026-10 add their 10th each; older months are gone.
    assert sorted({s[:6] for s in stamps}) == sorted(
        {f"{y}{m:02d}" for y, m in [(2025, 12)] + [(2026, m) for m in range(1, 12)]}
    )
    assert len(kept) == 14 + 11
    total = len(days) + len(months) + 1
    assert not list(folder.glob("*.part"))
    with session_factory() as s:
        pruned = s.execute(select(Backup).where(Backup.pruned_at.is_not(None))).scalars().all()
        live = s.execute(select(Backup).where(Backup.pruned_at.is_(None))).scalars().all()
    assert len(live) == len(kept) and len(pruned) == total - len(kept)
    assert {r.location for r in live} == {str(p) for p in kept}


def _damage(engine):
    """Edit a posting behind the ledger's back (its guard trigger dropped first)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER postings_append_only ON postings"))
        else:
            conn.execute(text("DROP TRIGGER postings_append_only_update"))
        conn.execute(text("UPDATE postings SET amount = amount * 10 WHERE id = 1"))


def test_restore_round_trip_verifies_with_equal_heads(
    db_url, engine, session_factory, folders, now
):
    folder, evidence = folders
    with session_factory() as s, s.begin():
        make_history(s, code="east", now=now, evidence_root=evidence)
        make_history(s, code="west", now=now, evidence_root=evidence)
    with session_factory() as s, s.begin():
        taken = backups.take_backup(
            s,
            folder=folder,
            database_url=db_url,
            evidence_root=evidence,
            now=now,
            reason=backups.MANUAL,
        )
    with session_factory() as s:
        before = verify(s).heads
    assert {k: list(v) for k, v in before.items()} == taken.heads
    # Damage: a posting edited, a photo lost.
    _damage(engine)
    for photo in evidence.rglob("*.jpg"):
        photo.unlink()
    with session_factory() as s:
        assert not verify(s).ok
    engine.dispose()
    manifest = backups.restore_archive(taken.path, database_url=db_url, evidence_root=evidence)
    engine.dispose()
    with session_factory() as s:
        checks, breaches = backups.check_restored(s, manifest)
    assert breaches == []
    assert {c.code: c.now for c in checks} == before
    assert all(c.ok and c.at_backup == c.now for c in checks)
    assert len(list(evidence.rglob("*.jpg"))) == 2
    # The restored database is a working one: the guard is back and new points post.
    with session_factory() as s, s.begin():
        scheme = s.execute(select(Scheme)).scalars().first()
        home_id = s.execute(text("SELECT id FROM households LIMIT 1")).scalar_one()
        ledger.award(
            s, scheme=scheme, subject_id=home_id, points=1, idem_key="after", actor_id=None, now=now
        )
    with session_factory() as s:
        assert verify(s).ok


def test_backup_refuses_a_missing_folder_and_restore_a_foreign_file(
    db_url, session_factory, tmp_path, now
):
    stick = tmp_path / "usb" / "backups"  # the stick (tmp_path/usb) is not plugged in
    (tmp_path / "usb").mkdir()  # ... but its mount point is there: never write to it
    with session_factory() as s, s.begin(), pytest.raises(backups.BackupFolderError):
        backups.take_backup(
            s, folder=stick, database_url=db_url, evidence_root=None, now=now, reason="manual"
        )
    with session_factory() as s:
        assert s.execute(select(Backup)).first() is None
        status = backups.backup_status(s, folder=stick, now=now)
    assert status.folder_missing and status.stale and status.warn
    bogus = tmp_path / "x.zip"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(backups.BackupFileError):
        backups.restore_archive(bogus, database_url=db_url, evidence_root=None)
