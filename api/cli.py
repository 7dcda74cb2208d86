"""The `points` command: serve, demo data, verify, migrations; each feature adds its commands."""

from __future__ import annotations

import importlib
import sys

import click
from flask.cli import FlaskGroup, with_appcontext

# Each feature's commands, imported only when one of them runs: `points --help` must not load
# SQLAlchemy models, openpyxl, reportlab or the catalog files (it took ~2.3 s). The short help
# is kept here for the listing; tests/api/test_cli_lazy.py checks it against the commands.
# A command's modules register in order: `village` is org's group, which backups extends with
# `village export|import`.
ORG, BACKUPS = "api.org.cli", "api.backups.cli"
FEATURE_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "village": ((ORG, BACKUPS), "Villages (tenants)."),
    "user": ((ORG,), "Staff users."),
    "roster": ((ORG,), "Household rosters (花名册)."),
    "catalog": (("api.catalog.cli",), "积分标准：导出、导入、比较、通过、试算 (catalog versions)."),
    "cards": (
        ("api.shop.cli",),
        "Write an A4 PDF of household cards, issuing cards to households that have none.",
    ),
    "cycle": (("api.cycles.cli",), "Periods: status, closing (reconcile), period statements."),
    "scheduler": (
        ("api.cycles.cli",),
        "Run the scheduler in this process: reconcile at start, then every few minutes.",
    ),
    "board": (("api.boards.cli",), "红黑榜: draft, approve, publish and show a month's board."),
    "honours": (
        ("api.honours.cli",),
        "评星与表彰: draft a year's or a period's honour lists, list and show them.",
    ),
    "backup": (
        (BACKUPS,),
        "Back up the database and photos now, to FOLDER or the backup folder (POINTS_BACKUP_DIR).",
    ),
    "restore": (
        (BACKUPS,),
        "Restore a backup FILE in place, then verify it and compare the ledger heads.",
    ),
}


def _create_app():
    from api import create_app

    return create_app()


class PointsGroup(FlaskGroup):
    """The `points` group: feature commands load on first use; listing them loads nothing."""

    def list_commands(self, ctx):
        # Not FlaskGroup's: that builds the app to look for plugin commands; we have none.
        return sorted(set(self.commands) | set(FEATURE_COMMANDS))

    def get_command(self, ctx, name):
        if name not in self.commands and name in FEATURE_COMMANDS:
            for module in FEATURE_COMMANDS[name][0]:
                importlib.import_module(module).register(self)
        return click.Group.get_command(self, ctx, name)

    def format_commands(self, ctx, formatter):
        rows = []
        for name in self.list_commands(ctx):
            if name in FEATURE_COMMANDS:
                rows.append((name, FEATURE_COMMANDS[name][1]))
            else:
                cmd = self.commands[name]
                if not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=PointsGroup, create_app=_create_app, add_default_commands=False)
def main() -> None:
    """村级积分管理 — village points engine."""


def transaction(**kwargs):
    from api.db import transaction as _transaction

    return _transaction(**kwargs)


@main.command("migrate")
@with_appcontext
def migrate_command() -> None:
    """Upgrade the database schema to the latest version."""
    from flask import current_app

    from api.db import engine
    from api.migrate import upgrade

    backup = upgrade(
        engine(),
        backup_dir=current_app.config.get("BACKUP_DIR"),
        evidence_root=current_app.config.get("EVIDENCE_DIR"),
        distributed=current_app.config.get("DISTRIBUTED") or None,
    )
    if backup is not None:
        click.echo(f"升级前已备份到 {backup} (backed up before migrating)")
    click.echo("数据库结构已是最新 (schema is up to date)")


@main.command("demo")
@click.option("--code", default="demo", show_default=True, help="Village code to create.")
@with_appcontext
def demo_command(code: str) -> None:
    """Fill the database with a demo village and print its staff passwords."""
    if not _load_demo(code):
        click.echo(f"村庄 {code} 已存在，未做改动 (village {code!r} exists; nothing changed)")


def _load_demo(code: str) -> bool:
    from sqlalchemy import select

    from points.db import utcnow
    from points.demo import create_demo_village
    from points.models import Village

    with transaction() as session:
        if session.execute(select(Village.id).where(Village.code == code)).first():
            return False
        result = create_demo_village(session, now=utcnow(), code=code)
    click.echo(
        f"已创建示范村 {code}: {result.households} 户, {result.residents} 人, "
        f"{result.party_members} 名党员, {result.entries} 笔账目"
    )
    click.echo("")
    click.echo("【工作人员】在 /login 用“用户名 + 密码”登录 (staff: username + password):")
    for username, password in result.passwords.items():
        click.echo(f"  {username:<20} {password}")
    click.echo(
        f"  镇督导员 {code}-supervisor 登录后看全镇汇总页 /town/{result.town}（只有汇总，没有个人信息）"
    )
    click.echo("")
    click.echo(
        "【村民】在 /login 的“村民登录”用“手机号 + 6 位 PIN 码”登录 (residents: phone + PIN):"
    )
    for login in result.resident_logins:
        state = "今天可以兑换" if login["can_redeem"] else "本期积分未到兑换门槛"
        click.echo(
            f"  手机 {login['phone']}  PIN {login['pin']}  {login['name']}"
            f"（户号 {login['household']}，本期 {login['score']} 分，{state}）"
        )
    click.echo("")
    click.echo(
        f"看点：工作台有待审核和一条待处理的异议；{result.board_month} 红黑榜草稿（含黑榜）待审批；"
        f"公示栏 /public/{code}/notices；积分标准 /public/{code}/rules"
    )
    return True


@main.command("serve")
@click.option("--demo", is_flag=True, help="Create the demo village first if it is missing.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not run the in-process scheduler (when `points scheduler` runs separately).",
)
@with_appcontext
def serve_command(demo: bool, host: str, port: int, threads: int, no_scheduler: bool) -> None:
    """Serve the app (waitress, `api.server`) on the configured database, the embedded SQLite
    by default.

    Unless told not to, it also runs the scheduler in-process (at start-up, then every few
    minutes), holding a database lease so that two servers never both act.
    """
    from flask import current_app

    from api.server import serve

    if demo:
        _load_demo("demo")
    app = current_app._get_current_object()
    click.echo(f"数据库: {app.config['DATABASE_URL']}")
    if not no_scheduler:
        from api.scheduler import start_in_process

        if start_in_process(app) is not None:
            click.echo("定时任务已在本进程运行 (in-process scheduler; --no-scheduler to turn off)")
    click.echo(f"打开浏览器访问 http://{host}:{port}/  (Ctrl+C 停止)")
    serve(app, host=host, port=port, threads=threads)


@main.command("verify")
@click.option("--village", "village_code", help="Check one village only.")
@click.option("--head", help="A head printed earlier, as SEQ:HASH; a shorter chain is a breach.")
@with_appcontext
def verify_command(village_code: str | None, head: str | None) -> None:
    """Check every ledger invariant and each village's hash chain; exit 1 on a breach."""
    from points.ledger.verify import verify

    expected = _parse_head(head) if head else None
    with transaction(read_only=True) as session:
        report = verify(session, village_code=village_code, expected_head=expected)
    for code, (seq, hash_) in report.heads.items():
        click.echo(f"{code}: head {seq}:{hash_}")
    if report.ok:
        click.echo(f"OK: {report.entries} entries verified")
        return
    click.echo(f"BREACH: {report.breaches[0]}", err=True)
    for more in report.breaches[1:]:
        click.echo(f"  also: {more}", err=True)
    sys.exit(1)


def _parse_head(value: str) -> tuple[int, str]:
    seq, _, hash_ = value.partition(":")
    if not seq.isdigit() or len(hash_) < 8 or any(c not in "0123456789abcdefABCDEF" for c in hash_):
        raise click.BadParameter(
            "expected SEQ:HASH, e.g. 1234:9f86d081884c7d65", param_hint="--head"
        )
    return int(seq), hash_.lower()


if __name__ == "__main__":
    main()
