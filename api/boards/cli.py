"""`points board draft|approve|publish|show [--village CODE] YYYY-MM`: the month's 红黑榜."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from api.commands import pick_village
from api.db import transaction
from points import audit, boards
from points.db import utcnow
from points.errors import PointsError


def register(main: click.Group) -> None:
    """Add the board commands to the `points` group."""
    main.add_command(board)


@click.group()
def board() -> None:
    """红黑榜: draft, approve, publish and show a month's board."""


def _step(village_code: str | None, month: str, action: str) -> None:
    try:
        with transaction() as s:
            village = pick_village(s, village_code)
            now = utcnow()
            if action == "draft":
                item = boards.draft_board(s, village=village, month=month, now=now)
            else:
                item = boards.live_board(s, village=village, month=month)
                if item is None:
                    raise click.UsageError(f"{month} 还没有红黑榜草稿，请先 points board draft")
                if action == "approve":
                    boards.approve_board(s, board=item, actor=None, now=now)
                elif action == "publish":
                    boards.publish_board(s, board=item, actor=None, now=now)
            if action != "show":
                audit.record(
                    s,
                    actor_id=None,
                    village_id=village.id,
                    action=f"board.{action}",
                    object_type="board",
                    object_id=item.id,
                    summary=f"命令行 {action} {month} 红黑榜",
                    now=now,
                )
            _print(s, village, item)
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc


def _print(session, village, item) -> None:
    view = boards.staff_view(session, item)
    click.echo(f"{village.code} {item.month} 红黑榜 #{item.id}：{item.status}")
    for e in view["entries"]:
        mark = "（已移除：" + e["removed_reason"] + "）" if e["removed"] else ""
        rank = f"第{e['rank']}名 " if e["rank"] else ""
        kind = "红" if e["kind"] == "red" else "黑"
        click.echo(f"  [{kind}·{e['section']}] {rank}{e['who']}  {e['text']}{mark}")
    if item.head_seq is not None:
        click.echo(f"head {item.head_seq}:{item.head_hash}")


def _command(action: str, help_text: str):
    @board.command(action, help=help_text)
    @click.argument("month")
    @click.option(
        "--village", "village_code", help="村庄编码；只有一个村庄时可省略 (village code)."
    )
    @with_appcontext
    def run(month: str, village_code: str | None) -> None:
        _step(village_code, month, action)

    return run


_command("draft", "Draft a past month's board from posted entries (YYYY-MM).")
_command("approve", "Approve the month's draft (YYYY-MM).")
_command("publish", "Publish the month's approved board with the ledger head (YYYY-MM).")
_command("show", "Show the month's live board (YYYY-MM).")
