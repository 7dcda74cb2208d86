"""`points backup [DIR]`, `points restore FILE`, `points village export|import`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext

from api.backups.scheduled import backup_now
from api.commands import pick_village
from api.db import dispose_engines, engine, transaction
from points import audit, backups
from points.db import utcnow
from points.errors import PointsError


def register(main: click.Group) -> None:
    """Add `backup` and `restore` to `points`, and `export`/`import` to `points village`.

    The `village` group belongs to the org feature (api/org/cli.py): it is looked up on the
    `points` group, so this package adds two commands to it without importing another feature.
    """
    main.add_command(backup_command)
    main.add_command(restore_command)
    village = main.commands.get("village")
    if village is None:  # registered before the org commands: keep our own group
        village = click.Group("village", help="Villages (tenants).")
        main.add_command(village)
    village.add_command(village_export)
    village.add_command(village_import)


def _head(head) -> str:
    if not head or not head[0]:
        return "（无）"
    return f"{head[0]}:{head[1][:16]}"


def _fail(message: str) -> None:
    click.echo(f"失败: {message}", err=True)
    sys.exit(1)


@click.command("backup")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_command(folder: Path | None) -> None:
    """Back up the database and photos now, to FOLDER or the backup folder (POINTS_BACKUP_DIR)."""
    app = current_app._get_current_object()
    if folder is None and not app.config.get("BACKUP_DIR"):
        _fail("没有设置备份位置：请给出目录，或设置 POINTS_BACKUP_DIR")
    try:
        taken = backup_now(app, now=utcnow(), reason=backups.MANUAL, folder=folder)
    except PointsError as exc:
        _fail(exc.message)
    click.echo(f"已备份到 {taken.path} ({taken.size // 1024} KB)")
    for code, head in taken.heads.items():
        click.echo(f"  {code}: 账链头 {head[0]}:{head[1]}")
    for path in taken.pruned:
        click.echo(f"  轮换删除旧备份 {path.name}")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Overwrite the current database without asking.")
@click.pass_context
def restore_command(ctx: click.Context, file: Path, yes: bool) -> None:
    """Restore a backup FILE in place, then verify it and compare the ledger heads.

    Stop the server first. The heads after the restore are printed beside those recorded when
    the backup was taken and those on each village's last published 红黑榜.
    """
    # The database about to be replaced may be damaged beyond opening: start the app without
    # migrating it (the restored one is upgraded below).
    before = os.environ.get("POINTS_AUTO_MIGRATE")
    os.environ["POINTS_AUTO_MIGRATE"] = "false"
    try:
        app = ctx.ensure_object(ScriptInfo).load_app()
    finally:
        if before is None:
            del os.environ["POINTS_AUTO_MIGRATE"]
        else:
            os.environ["POINTS_AUTO_MIGRATE"] = before
    with app.app_context():
        _restore(app, file, yes)


def _restore(app, file: Path, yes: bool) -> None:
    try:
        manifest = backups.read_manifest(file)
    except PointsError as exc:
        _fail(exc.message)
    click.echo(f"备份时间 {manifest['taken_at']}（{manifest['reason']}），将覆盖当前数据库：")
    click.echo(f"  {app.config['DATABASE_URL']}")
    if not yes and not click.confirm("确定要用这个备份覆盖当前数据吗？", default=False):
        _fail("未确认，没有做任何改动（加 --yes 可跳过确认）")
    from api.migrate import upgrade

    eng = engine()
    dispose_engines(app)  # no pooled connection may hold the old database open
    try:
        backups.restore_archive(
            file, database_url=app.config["DATABASE_URL"], evidence_root=_evidence(app)
        )
    except PointsError as exc:
        _fail(exc.message)
    dispose_engines(app)
    upgrade(eng)  # a backup from an older version is brought up to this one
    with transaction() as session:
        checks, breaches = backups.check_restored(session, manifest)
        audit.record(
            session,
            actor_id=None,
            village_id=None,
            action="backup.restore",
            object_type="backup",
            object_id=file.name,
            summary=f"从备份 {file.name} 恢复（备份时间 {manifest['taken_at']}）",
            now=utcnow(),
        )
    click.echo("村庄 | 恢复后账链头 | 备份时记录 | 最近公示红黑榜 | 结果")
    for c in checks:
        board = f"{c.board_month} {_head(c.board)}" if c.board else "（无）"
        verdict = "一致" if c.ok else "不一致！"
        click.echo(f"{c.code} | {_head(c.now)} | {_head(c.at_backup)} | {board} | {verdict}")
    if breaches:
        for breach in breaches:
            click.echo(f"BREACH: {breach}", err=True)
        sys.exit(1)
    click.echo("OK: 校验通过，备份记录的账链头都在恢复后的账链上")


def _evidence(app) -> Path:
    return Path(app.config["EVIDENCE_DIR"])


@click.command("export")
@click.option("--village", "village_code", required=True, help="The village's code.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def village_export(village_code: str, file: Path) -> None:
    """Write one village with its whole history and photos to FILE, to import elsewhere."""
    app = current_app._get_current_object()
    try:
        with transaction() as session:
            village = pick_village(session, village_code)
            manifest = backups.export_village(
                session, code=village.code, path=file, evidence_root=_evidence(app), now=utcnow()
            )
    except PointsError as exc:
        _fail(exc.message)
    rows = sum(manifest["counts"].values())
    click.echo(f"已导出村庄 {village_code} 到 {file}（{rows} 行）")
    click.echo(f"账链头 {manifest['head'][0]}:{manifest['head'][1]}（导入后用 points verify 核对）")


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def village_import(file: Path) -> None:
    """Import a village exported by `points village export` (refused if its code exists)."""
    from points.ledger.verify import verify

    app = current_app._get_current_object()
    try:
        with transaction() as session:
            result = backups.import_village(
                session, path=file, evidence_root=_evidence(app), now=utcnow()
            )
    except PointsError as exc:
        _fail(exc.message)
    code, head = result["code"], result["head"]
    with transaction() as session:
        report = verify(session, village_code=code)
    now_head = report.heads.get(code, (0, ""))
    click.echo(f"已导入村庄 {code}（新编号 {result['village_id']}）")
    for old, new in result["renamed_users"].items():
        click.echo(f"  用户名 {old} 已被占用，改为 {new}")
    click.echo(f"迁出时账链头 {head[0]}:{head[1]}")
    click.echo(f"导入后账链头 {now_head[0]}:{now_head[1]}")
    if not report.ok or tuple(now_head) != tuple(head):
        for breach in report.breaches:
            click.echo(f"BREACH: {breach}", err=True)
        _fail("导入后的账链与迁出时不一致")
    click.echo("OK: 校验通过，账链头与迁出时一致")
