"""`points cards`: print household cards for the points shop as an A4 PDF sheet."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from api.commands import pick_village
from api.db import transaction
from api.shop.cards_pdf import sheet_for
from points import audit
from points.db import utcnow
from points.errors import PointsError
from points.models import Household
from points.shop import credentials


def register(main: click.Group) -> None:
    """Add the shop commands to the `points` group."""
    main.add_command(cards)


@click.command("cards")
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--village", "village_code", help="村庄编码；只有一个村庄时可省略 (village code).")
@click.option(
    "--household",
    "numbers",
    multiple=True,
    help="只打印这些户号（可重复）；默认全部在册农户 (household numbers).",
)
@click.option("--reissue", is_flag=True, help="补办：作废旧卡并换新卡号 (revoke and reissue).")
@with_appcontext
def cards(out: Path, village_code: str | None, numbers: tuple[str, ...], reissue: bool) -> None:
    """Write an A4 PDF of household cards, issuing cards to households that have none."""
    try:
        with transaction() as s:
            village = pick_village(s, village_code)
            ids = None
            if numbers:
                found = dict(
                    s.execute(
                        select(Household.number, Household.id).where(
                            Household.village_id == village.id, Household.number.in_(numbers)
                        )
                    ).all()
                )
                missing = [n for n in numbers if n not in found]
                if missing:
                    raise click.UsageError(f"本村没有这些户号：{'、'.join(missing)}")
                ids = [found[n] for n in numbers]
            now = utcnow()
            live, issued = credentials.ensure_cards(
                s, village=village, actor_id=None, now=now, household_ids=ids, reissue=reissue
            )
            if issued:
                audit.record(
                    s,
                    actor_id=None,
                    village_id=village.id,
                    action="card.issue",
                    object_type="household_card",
                    object_id=village.code,
                    summary=f"命令行{'补办' if reissue else '发放'}户卡 {issued} 张",
                    now=now,
                )
            out.write_bytes(sheet_for(s, village, live))
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc
    pages = (len(live) + 9) // 10
    click.echo(f"已写入 {out}：{len(live)} 张户卡，{pages} 页 A4（其中新发 {issued} 张）")
