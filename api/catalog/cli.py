"""`points catalog …`: export, import, diff, adopt, list and dry-run a scheme's 积分标准."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import NoReturn

import click
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.catalog.files import catalog_file, read_catalog, write_catalog
from api.db import transaction
from points import audit, catalog
from points.catalog.dryrun import ledger_dry_run
from points.db import utcnow
from points.errors import CatalogProblemsError, PointsError
from points.models import CatalogRule, CatalogVersion, Scheme, Village
from points.models.catalog import CatalogStatus
from points.periods import local_date

catalog_cli = AppGroup("catalog", help="积分标准：导出、导入、比较、通过、试算 (catalog versions).")


def register(main) -> None:
    """Add `points catalog …` to the `points` group."""
    main.add_command(catalog_cli)


village_option = click.option(
    "--village", "village_code", help="村庄代码；只有一个村庄时可省略 (village code)."
)
version_option = click.option("--version", "number", type=int, help="版本号 (version number).")


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


def _village(session: Session, code: str | None) -> Village:
    """Return the village `code`, or the only village when no code is given."""
    if code:
        village = session.execute(select(Village).where(Village.code == code)).scalar_one_or_none()
        if village is None:
            _fail(f"村庄“{code}”不存在")
        return village
    villages = session.execute(select(Village).order_by(Village.code)).scalars().all()
    if not villages:
        _fail("还没有任何村庄（可先运行 points demo）")
    if len(villages) > 1:
        _fail("有多个村庄，请用 --village 指定：" + "、".join(v.code for v in villages))
    return villages[0]


def _scheme(session: Session, village: Village, code: str | None) -> Scheme:
    schemes = session.execute(
        select(Scheme).where(Scheme.village_id == village.id).order_by(Scheme.id)
    ).scalars()
    by_code = {s.code: s for s in schemes}
    if code not in by_code:
        known = "、".join(by_code) or "（无）"
        what = f"积分方案“{code}”不存在" if code else "请用 --scheme 指定积分方案"
        _fail(f"{village.name}：{what}；现有方案：{known}")
    return by_code[code]


def _version(session: Session, scheme: Scheme, number: int | None) -> CatalogVersion:
    """Return version `number`, or the newest draft when no number is given."""
    if number is not None:
        version = catalog.find_version(session, scheme=scheme, number=number)
        if version is None:
            _fail(f"{scheme.name}没有第 {number} 版积分标准")
        return version
    draft = catalog.latest_draft(session, scheme=scheme)
    if draft is None:
        _fail(f"{scheme.name}没有草案；请先用 points catalog import 导入，或用 --version 指定版本")
    return draft


def _print_diff(diff: catalog.CatalogDiff, base: CatalogVersion | None) -> None:
    against = f"与第 {base.number} 版相比" if base is not None else "此前没有通过的版本；全部为新增"
    click.echo(f"{against}：{diff.summary()}")
    for line in diff.lines():
        click.echo(f"  {line}")


def _base_of(session: Session, scheme: Scheme, version: CatalogVersion) -> CatalogVersion | None:
    """Return what `version` is compared with: the adopted version, or for an adopted or retired
    version the adopted version before it."""
    if version.status == CatalogStatus.DRAFT:
        return catalog.adopted_version(session, scheme=scheme)
    earlier = [
        v
        for v in catalog.list_versions(session, scheme=scheme)
        if v.status != CatalogStatus.DRAFT and v.number < version.number
    ]
    return earlier[-1] if earlier else None


def _audit(session: Session, version: CatalogVersion, action: str, summary: str) -> None:
    audit.record(
        session,
        actor_id=None,
        village_id=version.village_id,
        action=action,
        object_type="catalog_version",
        object_id=version.id,
        summary=f"{summary}（命令行）",
        now=utcnow(),
    )


def _handle_points_error(exc: PointsError) -> NoReturn:
    lines = [exc.message]
    for field, messages in getattr(exc, "errors", {}).items():
        lines += [f"  {m}" for m in messages] if field == "problems" else messages
    _fail("\n".join(lines))


@catalog_cli.command("list")
@village_option
@click.option("--scheme", "scheme_code", help="积分方案代码，如 household、party；省略则全部列出.")
def list_command(village_code: str | None, scheme_code: str | None) -> None:
    """List every catalog version with its status, adoption and effective dates."""
    with transaction(read_only=True) as session:
        village = _village(session, village_code)
        schemes = (
            [_scheme(session, village, scheme_code)]
            if scheme_code
            else session.execute(
                select(Scheme).where(Scheme.village_id == village.id).order_by(Scheme.id)
            ).scalars()
        )
        for scheme in schemes:
            click.echo(f"{village.name} [{village.code}] · {scheme.name} [{scheme.code}]")
            versions = catalog.list_versions(session, scheme=scheme)
            if not versions:
                click.echo("  还没有积分标准")
            counts = dict(
                session.execute(
                    select(CatalogRule.version_id, func.count())
                    .where(CatalogRule.version_id.in_([v.id for v in versions]))
                    .group_by(CatalogRule.version_id)
                ).all()
            )
            for v in versions:
                click.echo(f"  {_version_line(v, counts.get(v.id, 0))}")


def _version_line(v: CatalogVersion, rules: int) -> str:
    status = catalog.STATUS_TEXT[CatalogStatus(v.status)]
    text = f"第 {v.number} 版  {status}  {rules} 项  {v.title}"
    if v.adopted_on:
        text += f"  {v.adopted_on.isoformat()} {v.adopted_by_body}通过"
    if v.effective_from:
        text += f"  自 {v.effective_from.isoformat()} 起生效"
    if v.effective_to:
        text += f"，{v.effective_to.isoformat()} 起停用"
    return text


@catalog_cli.command("export")
@village_option
@click.option("--scheme", "scheme_code", required=True, help="积分方案代码，如 household.")
@version_option
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def export_command(village_code: str | None, scheme_code: str, number: int | None, path: str):
    """Write a catalog version (default: the adopted one) to FILE.xlsx, .yaml or .json."""
    with transaction() as session:
        village = _village(session, village_code)
        scheme = _scheme(session, village, scheme_code)
        if number is None:
            version = catalog.adopted_version(session, scheme=scheme) or catalog.latest_draft(
                session, scheme=scheme
            )
            if version is None:
                _fail(f"{scheme.name}还没有积分标准")
        else:
            version = _version(session, scheme, number)
        data = catalog_file(version, village=village, scheme=scheme)
    try:
        write_catalog(path, data)
    except ValueError as exc:
        _fail(str(exc))
    status = catalog.STATUS_TEXT[CatalogStatus(version.status)]
    click.echo(
        f"已导出{scheme.name}第 {version.number} 版（{status}，{len(data.rules)} 项）到 {path}"
    )


@catalog_cli.command("import")
@village_option
@click.option("--scheme", "scheme_code", help="积分方案代码；省略则用文件中记录的方案.")
@click.option("--title", default="", help="草案标题；省略则用文件中的标题.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_command(village_code: str | None, scheme_code: str | None, title: str, path: str):
    """Import FILE as the scheme's draft; on any problem list them all and change nothing."""
    try:
        data = read_catalog(path)
    except CatalogProblemsError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        _fail(f"共 {len(exc.problems)} 个问题，未做任何改动。请改正后重新导入。")
    with transaction() as session:
        if village_code is None and data.village:
            found = session.execute(select(Village).where(Village.code == data.village)).first()
            village_code = data.village if found else None
        village = _village(session, village_code)
        scheme = _scheme(session, village, scheme_code or data.scheme)
        try:
            draft, created = catalog.save_draft(
                session,
                scheme=scheme,
                rules=data.rules,
                categories=data.categories,
                title=title or data.title or "",
                actor_id=None,
                now=utcnow(),
            )
        except PointsError as exc:
            _handle_points_error(exc)
        current = catalog.adopted_version(session, scheme=scheme)
        diff = catalog.diff_versions(current, draft)
        done = "新建" if created else "更新"
        _audit(session, draft, "catalog.import", f"从 {path} 导入第 {draft.number} 版草案")
        click.echo(
            f"已{done}{scheme.name}第 {draft.number} 版草案“{draft.title}”，共 {len(data.rules)} 项"
        )
        if current is not None and data.version and data.version != current.number:
            click.echo(f"注意：文件导出自第 {data.version} 版，现行的是第 {current.number} 版")
        _print_diff(diff, current)
        click.echo(
            f"村民（代表）大会表决通过后运行：points catalog adopt --village {village.code} "
            f"--scheme {scheme.code} --version {draft.number} --body 村民代表大会 --date YYYY-MM-DD"
        )


@catalog_cli.command("diff")
@village_option
@click.option("--scheme", "scheme_code", required=True, help="积分方案代码.")
@version_option
@click.option("--against", type=int, help="与哪一版比较；默认为现行版本.")
def diff_command(
    village_code: str | None, scheme_code: str, number: int | None, against: int | None
):
    """Show what a version (default: the draft) changes against the adopted version."""
    with transaction() as session:
        village = _village(session, village_code)
        scheme = _scheme(session, village, scheme_code)
        version = _version(session, scheme, number)
        base = _version(session, scheme, against) if against else _base_of(session, scheme, version)
        status = catalog.STATUS_TEXT[CatalogStatus(version.status)]
        click.echo(f"{scheme.name}第 {version.number} 版（{status}）“{version.title}”")
        _print_diff(catalog.diff_versions(base, version), base)


@catalog_cli.command("adopt")
@village_option
@click.option("--scheme", "scheme_code", required=True, help="积分方案代码.")
@click.option("--version", "number", type=int, required=True, help="要通过的草案版本号.")
@click.option("--body", required=True, help="表决通过的会议或机构，如 村民代表大会.")
@click.option("--date", "adopted_on", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--effective", type=click.DateTime(["%Y-%m-%d"]), help="生效日期；默认为通过日期.")
@click.option("--note", default="", help="备注，如会议记录编号.")
@click.option("--yes", "-y", is_flag=True, help="不再确认 (do not ask).")
def adopt_command(
    village_code: str | None,
    scheme_code: str,
    number: int,
    body: str,
    adopted_on: datetime,
    effective: datetime | None,
    note: str,
    yes: bool,
) -> None:
    """Adopt a draft as voted; the version it replaces is retired. Shows the diff first."""
    with transaction() as session:
        village = _village(session, village_code)
        scheme = _scheme(session, village, scheme_code)
        version = _version(session, scheme, number)
        if version.status != CatalogStatus.DRAFT:
            status = catalog.STATUS_TEXT[CatalogStatus(version.status)]
            _fail(f"第 {version.number} 版积分标准{status}，只有草案可以表决通过")
        current = catalog.adopted_version(session, scheme=scheme)
        click.echo(f"{scheme.name}第 {version.number} 版“{version.title}”")
        _print_diff(catalog.diff_versions(current, version), current)
        if not yes:
            click.confirm(
                f"确认 {body} 已于 {adopted_on.date().isoformat()} 表决通过此版本？", abort=True
            )
        try:
            catalog.adopt(
                session,
                version=version,
                body=body,
                adopted_on=adopted_on.date(),
                note=note,
                actor_id=None,
                now=utcnow(),
                effective_from=effective.date() if effective else None,
            )
        except PointsError as exc:
            _handle_points_error(exc)
        _audit(session, version, "catalog.adopt", f"第 {version.number} 版经{body}通过")
        click.echo(
            f"第 {version.number} 版已由{version.adopted_by_body}于 {version.adopted_on.isoformat()} "
            f"通过，自 {version.effective_from.isoformat()} 起生效"
        )
        if current is not None:
            click.echo(f"第 {current.number} 版自同日起停用；此前的积分仍按原版本分值记账")


@catalog_cli.command("dryrun")
@village_option
@click.option("--scheme", "scheme_code", required=True, help="积分方案代码.")
@version_option
@click.option("--months", default=3, show_default=True, type=click.IntRange(1, 36))
@click.option("--all", "show_all", is_flag=True, help="列出全部对象，而不只是有变化的.")
def dryrun_command(
    village_code: str | None, scheme_code: str, number: int | None, months: int, show_all: bool
):
    """Apply a draft to the last months' posted acts: how each score and rank would change."""
    now = utcnow()
    with transaction() as session:
        village = _village(session, village_code)
        scheme = _scheme(session, village, scheme_code)
        version = _version(session, scheme, number)
        result, labels = ledger_dry_run(session, version=version, months=months, now=now)
    click.echo(
        f"试算：{scheme.name}第 {version.number} 版，近 {months} 个月（截至 {local_date(now)}）"
    )
    if not result.acts:
        click.echo(
            f"近 {months} 个月没有注明积分标准项目的入账记录，无法试算。"
            "（入账记录关联积分标准项目之后，即可用此命令试算。）"
        )
        return
    rows = result.rows if show_all else result.changed_rows
    click.echo(
        f"共 {result.acts} 笔记录，{result.changed_acts} 笔分值有变化；"
        f"{len(result.changed_rows)} 个对象的得分或排名有变化"
    )
    for code, count in sorted(result.missing_new.items()):
        click.echo(f"  注意：草案中没有 {code}，{count} 笔记录按 0 分计")
    if rows:
        click.echo(f"  {'对象':<16}{'原得分':>8}{'新得分':>8}{'变化':>8}{'原排名':>8}{'新排名':>8}")
    for row in rows:
        label = labels.get(row.subject_id, str(row.subject_id))
        click.echo(
            f"  {label:<16}{row.old_score:>8}{row.new_score:>8}{row.change:>+8}"
            f"{row.old_rank:>8}{row.new_rank:>8}"
        )
