"""Backups of the whole database with its evidence photos: take, rotate, list, restore, check.

A backup is one zip file, `points-<UTC stamp>-<reason>-<n>.zip`, holding the database
(`points.db`, a consistent online copy by SQLite's backup API; or `points.dump`, `pg_dump -Fc`
on PostgreSQL), the evidence photos under `evidence/`, and `manifest.json` with the time, the
reason and every village's ledger head at that moment. One file is easy to carry on a USB stick
or a network share, and restoring needs nothing but the file.

The database copy is made on another connection while the caller's transaction holds the row
that records it: on SQLite that transaction began with BEGIN IMMEDIATE, so no entry is appended
between reading the heads and the copy, and the heads in the manifest are the copy's heads.
On PostgreSQL pg_dump takes its own snapshot, which may be a little newer than the heads read:
the restore check therefore asks that each recorded head still be *on* the restored chain.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import make_url, select, update
from sqlalchemy.orm import Session

from points.db import dialect_insert
from points.errors import PointsError
from points.models import Backup, Board, ChainHead, Village
from points.periods import local_date

DAILY = "daily"
MANUAL = "manual"
MIGRATION = "migration"
PERIOD_CLOSE = "period_close"
REASONS = (DAILY, MANUAL, MIGRATION, PERIOD_CLOSE)
KEEP_DAILY = 14
KEEP_MONTHLY = 12
STALE_AFTER = timedelta(days=2)
NAME = re.compile(r"^points-(\d{8}T\d{6}Z)-([a-z_]+)-(\d+)\.zip$")
PG_TIMEOUT = 3600  # seconds a pg_dump or pg_restore may take before it is given up


class BackupFolderError(PointsError):
    code = "backup_folder_missing"


class BackupFileError(PointsError):
    code = "backup_file_invalid"


@dataclass(frozen=True)
class Taken:
    """A backup written: its record id (None when no row was kept), file and heads."""

    backup_id: int | None
    path: Path
    size: int
    heads: dict[str, list]
    pruned: tuple[Path, ...] = ()


# ---------------------------------------------------------------------------------------------
# Taking
# ---------------------------------------------------------------------------------------------


def read_heads(session: Session) -> dict[str, list]:
    """Return every village's ledger head as {code: [seq, hash]} (villages without entries too)."""
    rows = session.execute(
        select(Village.code, ChainHead.seq, ChainHead.hash)
        .outerjoin(ChainHead, ChainHead.village_id == Village.id)
        .order_by(Village.code)
    ).all()
    return {code: [seq or 0, hash_ or ""] for code, seq, hash_ in rows}


def take_backup(
    session: Session,
    *,
    folder: Path,
    database_url: str,
    evidence_root: Path | None,
    now: datetime,
    reason: str,
    slot: str | None = None,
    keep_daily: int = KEEP_DAILY,
    keep_monthly: int = KEEP_MONTHLY,
    create_folder: bool = False,
) -> Taken | None:
    """Write a backup to `folder`, record it, rotate the folder; None when `slot` was taken.

    A missing folder is refused unless `create_folder` (an operator naming a new folder): a USB
    stick's folder that is gone means the stick is out, and writing to the empty mount point
    would fill the laptop's own disk with "backups" that die with it.

    The record (with its UNIQUE slot) is inserted first, in the caller's transaction: a second
    scheduler's insert waits for ours, then finds the slot taken. Should the copy fail, the
    caller's rollback removes the record too, and the next tick tries again.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown backup reason {reason!r}")
    folder = _usable_folder(folder, create=create_folder)
    ins = dialect_insert(session, Backup).values(
        taken_at=now, reason=reason, slot=slot, location="", size=0, heads={}
    )
    stmt = ins.on_conflict_do_nothing(index_elements=["slot"]).returning(Backup.__table__.c.id)
    backup_id = session.connection().execute(stmt).scalar_one_or_none()
    if backup_id is None:
        return None
    heads = read_heads(session)
    path = write_archive(
        folder=folder,
        database_url=database_url,
        evidence_root=evidence_root,
        now=now,
        reason=reason,
        heads=heads,
        number=backup_id,
    )
    size = path.stat().st_size
    session.execute(
        update(Backup)
        .where(Backup.id == backup_id)
        .values(location=str(path), size=size, heads=heads)
    )
    pruned = rotate(
        session, folder=folder, now=now, keep_daily=keep_daily, keep_monthly=keep_monthly
    )
    session.flush()
    return Taken(backup_id, path, size, heads, tuple(pruned))


def daily_slot(now: datetime) -> str:
    """The daily backup's slot: one per local (Asia/Shanghai) calendar day."""
    return f"daily:{local_date(now).isoformat()}"


def record_backup(session: Session, *, taken: Taken, now: datetime, reason: str) -> int:
    """Record a backup written before its database had the `backups` table (before a migration)."""
    row = Backup(
        taken_at=now,
        reason=reason,
        location=str(taken.path),
        size=taken.size,
        heads=taken.heads,
    )
    session.add(row)
    session.flush()
    return row.id


def write_archive(
    *,
    folder: Path,
    database_url: str,
    evidence_root: Path | None,
    now: datetime,
    reason: str,
    heads: dict[str, list],
    number: int,
) -> Path:
    """Write one backup zip (database, photos, manifest) into `folder`; return its path.

    The zip is written under a temporary name and renamed when complete, so a folder never
    holds a half-written backup under a backup's name (a USB stick pulled out mid-copy).
    """
    folder = _usable_folder(folder)
    name = f"points-{now.strftime('%Y%m%dT%H%M%SZ')}-{reason}-{number}.zip"
    final = folder / name
    partial = folder / (name + ".part")
    url = make_url(database_url)
    with tempfile.TemporaryDirectory(prefix="points-backup-") as tmp:
        if url.get_backend_name() == "sqlite":
            db_name = "points.db"
            copy_sqlite(Path(url.database), Path(tmp) / db_name)
        else:
            db_name = "points.dump"
            pg_dump(database_url, Path(tmp) / db_name)
        manifest = {
            "format": 1,
            "taken_at": now.isoformat(),
            "reason": reason,
            "database": db_name,
            "heads": heads,
        }
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(Path(tmp) / db_name, db_name)
            if evidence_root is not None and Path(evidence_root).is_dir():
                for file in sorted(Path(evidence_root).rglob("*")):
                    if file.is_file():
                        arc = "evidence/" + file.relative_to(evidence_root).as_posix()
                        # Photos are already compressed: store them as they are.
                        zf.write(file, arc, compress_type=zipfile.ZIP_STORED)
            zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
    with open(partial, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, final)
    return final


def copy_sqlite(source: Path, dest: Path) -> None:
    """Copy a live SQLite database consistently with SQLite's online backup API."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def pg_dump(database_url: str, dest: Path) -> None:
    """Dump a PostgreSQL database with `pg_dump -Fc` (the custom, compressed format)."""
    _run_pg(["pg_dump", "-Fc", "--no-owner", "-f", str(dest), "-d", _libpq_url(database_url)])


def _libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def _run_pg(args: list[str]) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=PG_TIMEOUT)
    except FileNotFoundError as exc:
        raise PointsError(f"找不到 {args[0]}，请安装 PostgreSQL 客户端") from exc
    if done.returncode != 0:
        raise PointsError(f"{args[0]} 失败: {done.stderr.strip()[:500]}")


def _usable_folder(folder: Path, *, create: bool = False) -> Path:
    """Return the folder (created when asked and its parent exists); refuse a missing one."""
    folder = Path(folder)
    if not folder.is_dir():
        if not create or not folder.parent.is_dir():
            raise BackupFolderError(f"备份位置不存在（U 盘未插好？）：{folder}")
        folder.mkdir()
    return folder


# ---------------------------------------------------------------------------------------------
# Rotation and status
# ---------------------------------------------------------------------------------------------


def rotate(
    session: Session,
    *,
    folder: Path,
    now: datetime,
    keep_daily: int = KEEP_DAILY,
    keep_monthly: int = KEEP_MONTHLY,
) -> list[Path]:
    """Delete backups beyond the rotation; return the files deleted.

    Kept: the newest backup of each of the `keep_daily` most recent days that have one, and the
    newest of each of the `keep_monthly` most recent months (local dates). Records stay, with
    `pruned_at` set, so the history of what was backed up (and its heads) is not lost.
    """
    files = []
    for path in Path(folder).iterdir():
        m = NAME.match(path.name)
        if m:
            stamp = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            files.append((stamp, int(m.group(3)), path))
    files.sort(reverse=True)  # newest first
    keep: set[Path] = set()
    days: dict[object, Path] = {}
    months: dict[str, Path] = {}
    for stamp, _n, path in files:
        day = local_date(stamp)
        days.setdefault(day, path)
        months.setdefault(day.strftime("%Y-%m"), path)
    keep.update(list(days.values())[:keep_daily])
    keep.update(list(months.values())[:keep_monthly])
    pruned = [path for _s, _n, path in files if path not in keep]
    for path in pruned:
        path.unlink(missing_ok=True)
    if pruned:
        session.execute(
            update(Backup)
            .where(Backup.location.in_([str(p) for p in pruned]), Backup.pruned_at.is_(None))
            .values(pruned_at=now)
        )
    return pruned


@dataclass(frozen=True)
class BackupStatus:
    """What the admin home shows: the last backup and whether to worry."""

    folder: str
    folder_missing: bool
    last_at: datetime | None
    last_location: str | None
    stale: bool  # never backed up, or the last one is older than two days

    @property
    def warn(self) -> bool:
        return self.folder_missing or self.stale


def backup_status(session: Session, *, folder: Path, now: datetime) -> BackupStatus:
    """Return the last backup's time and place, and whether it is missing, old or unreachable."""
    last = session.execute(
        select(Backup)
        .where(Backup.location != "", Backup.pruned_at.is_(None))
        .order_by(Backup.taken_at.desc(), Backup.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return BackupStatus(
        folder=str(folder),
        folder_missing=not Path(folder).is_dir(),
        last_at=last.taken_at if last else None,
        last_location=last.location if last else None,
        stale=last is None or now - last.taken_at > STALE_AFTER,
    )


def last_backup_at(session: Session) -> datetime | None:
    """Return when the last backup was taken (None when never)."""
    return (
        session.execute(
            select(Backup.taken_at).where(Backup.location != "").order_by(Backup.taken_at.desc())
        )
        .scalars()
        .first()
    )


# ---------------------------------------------------------------------------------------------
# Restoring
# ---------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict:
    """Return a backup file's manifest; refuse a file that is not one of our backups."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            zf.getinfo(manifest["database"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BackupFileError(f"不是有效的备份文件：{path}") from exc
    return manifest


def restore_archive(path: Path, *, database_url: str, evidence_root: Path | None) -> dict:
    """Put a backup's database and photos back in place; return its manifest.

    SQLite: the saved database is copied over the live one with the backup API (page by page,
    under SQLite's locks, so no reader sees a half-copied file); stop the server first. The
    saved photos are written back; photos added since are left where they are.
    PostgreSQL: `pg_restore --clean --if-exists --single-transaction` into the database.
    """
    manifest = read_manifest(path)
    url = make_url(database_url)
    kind = "points.db" if url.get_backend_name() == "sqlite" else "points.dump"
    if manifest["database"] != kind:
        raise BackupFileError("备份文件的数据库类型与当前数据库不同")
    with tempfile.TemporaryDirectory(prefix="points-restore-") as tmp, zipfile.ZipFile(path) as zf:
        zf.extract(kind, tmp)
        saved = Path(tmp) / kind
        if kind == "points.db":
            _restore_sqlite(saved, Path(url.database))
        else:
            _run_pg(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    "-d",
                    _libpq_url(database_url),
                    str(saved),
                ]
            )
        if evidence_root is not None:
            for info in zf.infolist():
                if info.filename.startswith("evidence/") and not info.is_dir():
                    rel = Path(info.filename).relative_to("evidence")
                    if ".." in rel.parts or rel.is_absolute():
                        raise BackupFileError("备份文件中有不安全的路径")
                    target = Path(evidence_root) / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src_file, open(target, "wb") as out:
                        shutil.copyfileobj(src_file, out)
    return manifest


def _restore_sqlite(saved: Path, live: Path) -> None:
    """Copy the saved database over the live one; set a damaged live file aside first.

    The backup API writes into the live database under SQLite's locks. A live file that SQLite
    cannot open any more (a bad disk sector, a half-copied file) is renamed
    `<name>.damaged-<n>` with its -wal and -shm files, and the saved file takes its place.
    """
    src = sqlite3.connect(saved)
    try:
        dst = sqlite3.connect(live, timeout=30)
        try:
            src.backup(dst)
            return
        except sqlite3.DatabaseError:
            pass
        finally:
            dst.close()
    finally:
        src.close()
    n = 1
    while live.with_name(f"{live.name}.damaged-{n}").exists():
        n += 1
    for suffix in ("", "-wal", "-shm"):
        part = live.with_name(live.name + suffix)
        if part.exists():
            part.rename(live.with_name(f"{live.name}{suffix}.damaged-{n}"))
    shutil.copyfile(saved, live)


@dataclass(frozen=True)
class HeadCheck:
    """One village after a restore: its head now, at backup time, and on its last board."""

    code: str
    now: tuple[int, str]
    at_backup: tuple[int, str] | None
    board: tuple[int, str] | None
    board_month: str | None
    ok: bool  # verify passed with the recorded head (and the board's) on the chain


def check_restored(session: Session, manifest: dict) -> tuple[list[HeadCheck], list[str]]:
    """Verify the restored ledger; return each village's heads side by side, and the breaches.

    A village is ok when verify finds no breach and both the head recorded in the backup and
    the head printed on its last published board are still on its chain.
    """
    from points.ledger.verify import verify

    breaches: list[str] = []
    checks = []
    recorded = manifest.get("heads", {})
    for village in session.execute(select(Village).order_by(Village.code)).scalars():
        at_backup = tuple(recorded[village.code]) if village.code in recorded else None
        board = session.execute(
            select(Board.month, Board.head_seq, Board.head_hash)
            .where(Board.village_id == village.id, Board.status == "published")
            .order_by(Board.published_at.desc())
            .limit(1)
        ).first()
        report = verify(session, village_code=village.code)
        ok = report.ok
        breaches += report.breaches
        for head in (at_backup, (board.head_seq, board.head_hash) if board else None):
            if head and head[0]:
                on_chain = verify(session, village_code=village.code, expected_head=head)
                ok = ok and on_chain.ok
                breaches += [b for b in on_chain.breaches if b not in breaches]
        checks.append(
            HeadCheck(
                code=village.code,
                now=report.heads.get(village.code, (0, "")),
                at_backup=at_backup,
                board=(board.head_seq, board.head_hash) if board else None,
                board_month=board.month if board else None,
                ok=ok,
            )
        )
    return checks, breaches
