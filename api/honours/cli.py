"""`points honours draft|list|show`: operators draft a year's (or a scoring period's) honour
lists and read them back. Approval and publication stay on the pages and the API, where a
second named admin approves (起草与审定分离); the command line has no person to be that admin."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from api.commands import pick_village
from api.db import transaction
from points import audit, honours
from points.db import utcnow
from points.errors import PointsError
from points.models.honours import HonourKind

VILLAGE_HELP = "村庄编码；只有一个村庄时可省略 (village code)."


def register(main: click.Group) -> None:
    """Add the honours commands to the `points` group."""
    main.add_command(honours_group)


@click.group("honours")
def honours_group() -> None:
    """评星与表彰: draft a year's or a period's honour lists, list and show them."""


def _print(session, village, item) -> None:
    view = honours.staff_view(session, item)
    click.echo(
        f"{village.code} {honours.when_text(item)}{view['kind_text']} #{item.id}：{item.status}"
    )
    for e in view["entries"]:
        if e["removed"]:
            continue
        stars = f" {'★' * e['stars']}" if e["stars"] else ""
        click.echo(f"  {e['title'] if e['title'] != honours.STARS else '星级'}{stars} {e['who']}")
    if item.head_seq is not None:
        click.echo(f"head {item.head_seq}:{item.head_hash}")


@honours_group.command("draft")
@click.option("--village", "village_code", help=VILLAGE_HELP)
@click.option(
    "--kind",
    type=click.Choice([k.value for k in HonourKind]),
    default=HonourKind.HOUSEHOLD_STARS.value,
    show_default=True,
    help="Which list (household_stars = 星级文明户).",
)
@click.option("--year", type=int, help="An ended year, e.g. 2025 (not needed with --period).")
@click.option(
    "--period",
    default="",
    help="A closed scoring period of the household scheme, e.g. 2025-Q3 (per-period 星级文明户).",
)
@with_appcontext
def draft(village_code: str | None, kind: str, year: int | None, period: str) -> None:
    """Draft a list from scores (the scheduler does this on its own); an existing live list is
    shown instead of a second one."""
    if year is None and not period:
        raise click.UsageError("请给出 --year 或 --period (a year or a period is needed)")
    try:
        with transaction() as s:
            village = pick_village(s, village_code)
            now = utcnow()
            item = honours.draft_list(
                s, village=village, kind=kind, year=year, period=period, now=now
            )
            audit.record(
                s,
                actor_id=None,
                village_id=village.id,
                action="honour.draft",
                object_type="honour_list",
                object_id=item.id,
                summary=f"命令行起草{honours.when_text(item)}{honours.kind_text(item.kind)}",
                now=now,
            )
            _print(s, village, item)
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc


@honours_group.command("list")
@click.option("--village", "village_code", help=VILLAGE_HELP)
@click.option("--year", type=int, help="Only this year's lists.")
@with_appcontext
def list_(village_code: str | None, year: int | None) -> None:
    """List the village's honour lists, drafts included, newest year first."""
    try:
        with transaction(read_only=True) as s:
            village = pick_village(s, village_code)
            items = honours.list_lists(s, village=village, public=False, year=year)
            if not items:
                click.echo("还没有荣誉名单")
            for item in items:
                entries = sum(1 for e in item.entries if not e.removed)
                click.echo(
                    f"#{item.id} {honours.when_text(item)}{honours.kind_text(item.kind)} "
                    f"{item.status} {entries}条"
                )
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc


@honours_group.command("show")
@click.argument("list_id", type=int)
@click.option("--village", "village_code", help=VILLAGE_HELP)
@with_appcontext
def show(list_id: int, village_code: str | None) -> None:
    """Show one list with its entries (LIST_ID from `points honours list`)."""
    try:
        with transaction(read_only=True) as s:
            village = pick_village(s, village_code)
            _print(s, village, honours.get_list(s, village=village, list_id=list_id))
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc
