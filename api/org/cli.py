"""`points village …`, `points user …` and `points roster import`: setting a village up."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from api.commands import pick_village
from api.db import transaction
from points import org
from points.db import utcnow
from points.errors import PointsError
from points.models import Scheme
from points.models.catalog import ClosePolicy, SubjectKind

SHOWN_PROBLEMS = 200


def register(main: click.Group) -> None:
    """Add the org commands to the `points` group."""
    main.add_command(village)
    main.add_command(user)
    main.add_command(roster)


@click.group()
def village() -> None:
    """Villages (tenants)."""


@village.command("create")
@click.option("--code", required=True, help="Short code used in URLs, e.g. dongshan.")
@click.option("--name", required=True)
@click.option("--town", required=True)
@click.option("--county", required=True)
@click.option(
    "--household-period",
    default="quarter",
    show_default=True,
    type=click.Choice(["month", "quarter", "year"]),
)
@click.option(
    "--close-policy",
    default="reset",
    show_default=True,
    type=click.Choice([p.value for p in ClosePolicy]),
)
@with_appcontext
def village_create(code, name, town, county, household_period, close_policy) -> None:
    """Create a village with its household (redeemable) and party schemes."""
    try:
        with transaction() as s:
            v = org.create_village(s, code=code, name=name, town=town, county=county)
            s.add_all(
                [
                    Scheme(
                        village_id=v.id,
                        code="household",
                        name="户积分",
                        subject_kind=SubjectKind.HOUSEHOLD,
                        period_kind=household_period,
                        close_policy=close_policy,
                        expire_after_n=None,
                        base_score=0,
                        redemption_threshold=0,
                        notice_days=7,
                        redeemable=True,
                    ),
                    Scheme(
                        village_id=v.id,
                        code="party",
                        name="党员积分",
                        subject_kind=SubjectKind.RESIDENT,
                        period_kind="year",
                        close_policy=ClosePolicy.CARRY,
                        base_score=0,
                        redemption_threshold=0,
                        notice_days=7,
                        redeemable=False,
                    ),
                ]
            )
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已创建村庄 {name}（{code}）")


@click.group()
def user() -> None:
    """Staff users."""


@user.command("create")
@click.option("--village", "village_code")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True)
@click.option(
    "--role", required=True, type=click.Choice(["admin", "reviewer", "recorder", "clerk"])
)
@click.option("--group", "group_name", help="For recorders: the group (网格) they record for.")
@click.password_option(help="Prompted when omitted.")
@with_appcontext
def user_create(village_code, username, display_name, role, group_name, password) -> None:
    """Create a staff user with one role in a village."""
    try:
        with transaction() as s:
            v = pick_village(s, village_code)
            group_id = None
            if group_name:
                group_id = next(
                    (g.id for g in org.list_groups(s, village=v) if g.name == group_name), None
                )
                if group_id is None:
                    raise click.UsageError(f"本村没有小组“{group_name}”")
            org.create_staff_user(
                s,
                village=v,
                new=org.NewUser(
                    username=username,
                    display_name=display_name,
                    password=password,
                    role=role,
                    group_id=group_id,
                ),
            )
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已创建账号 {username}（{role}）")


@click.group()
def roster() -> None:
    """Household rosters (花名册)."""


@roster.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--village", "village_code")
@with_appcontext
def roster_import(file: Path, village_code: str | None) -> None:
    """Import a roster (.xlsx or .csv): every row is checked first; nothing lands if any is bad."""
    from api.org.roster_io import read_roster
    from points.org.roster import RosterProblemsError, import_roster, validate_rows

    try:
        rows = read_roster(file.name, file.read_bytes())
        with transaction() as s:
            v = pick_village(s, village_code)
            problems = validate_rows(s, village=v, rows=rows)
            if problems:
                raise RosterProblemsError(problems)
            homes = len({str(r.get("number")) for _n, r in rows})
            with click.progressbar(length=homes, label="导入农户", show_pos=True) as bar:
                done = [0]

                def progress(n: int) -> None:
                    bar.update(n - done[0])
                    done[0] = n

                result = import_roster(
                    s, village=v, rows=rows, actor_id=None, now=utcnow(), progress=progress
                )
    except RosterProblemsError as exc:
        click.echo(f"花名册有 {len(exc.problems)} 处问题，未导入任何数据：", err=True)
        for problem in exc.problems[:SHOWN_PROBLEMS]:
            click.echo(f"  {problem}", err=True)
        if len(exc.problems) > SHOWN_PROBLEMS:
            click.echo(f"  ……还有 {len(exc.problems) - SHOWN_PROBLEMS} 处问题未列出", err=True)
        sys.exit(1)
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"已导入 {result.households} 户、{result.residents} 人；新建小组 "
        f"{result.groups_created} 个；期初积分 {result.opening_entries} 户"
    )
