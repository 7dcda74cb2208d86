"""`points cycle status|close|statement` for admins, and `points scheduler`, the dedicated clock."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from api.commands import pick_village
from api.db import transaction
from points import cycles
from points.db import utcnow
from points.errors import PointsError
from points.periods import LOCAL_TZ

STATUS_TEXT = {"open": "进行中", "closed": "已结算", "due": "待结算"}
POLICY_TEXT = {"reset": "期末清零", "carry": "结转", "expire_after_n": "逾期清零"}
KIND_TEXT = {"month": "按月", "quarter": "按季度", "year": "按年"}
RESULT_TEXT = {"done": "完成", "skipped": "已由其他进程完成", "failed": "失败"}
SHOWN_KEYS = 5


def register(main: click.Group) -> None:
    """Add `cycle` and `scheduler` to the `points` group."""
    main.add_command(cycle)
    main.add_command(scheduler_command)


def parse_now(value: str | None) -> datetime:
    """Return --now as an aware datetime (no offset: Beijing time), or the wall clock."""
    if not value:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            "expected an ISO time, e.g. 2027-01-01T00:05:00+08:00", param_hint="--now"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def _by_job(items) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for item in items:
        grouped.setdefault(item.job, []).append(item.key)
    return grouped


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


@click.group()
def cycle() -> None:
    """Periods: status, closing (reconcile), period statements."""


@cycle.command("status")
@click.option("--village", "village_code", help="Village code (optional with one village).")
@click.option("--now", "now_text", help="Show the state at this time (ISO; default: now).")
@with_appcontext
def cycle_status(village_code: str | None, now_text: str | None) -> None:
    """List each scheme's periods (open, closed, due to close), pending work and recent runs."""
    now = parse_now(now_text)
    with transaction() as s:
        v = pick_village(s, village_code)
        views = cycles.list_periods(s, village_id=v.id, now=now)
        todo = cycles.pending(s, now=now, village_id=v.id)
        runs = cycles.recent_runs(s, village_id=v.id, limit=10)
    click.echo(f"{v.name}（{v.code}）  时间 {_local(now)}（北京时间）")
    scheme = None
    for view in views:
        if view.scheme_code != scheme:
            scheme = view.scheme_code
            click.echo(
                f"  {view.scheme_name} [{view.scheme_code}] "
                f"{KIND_TEXT.get(view.period_kind, view.period_kind)}，"
                f"{POLICY_TEXT.get(view.close_policy, view.close_policy)} ({view.close_policy})"
            )
        line = f"    {view.key:<8} {STATUS_TEXT.get(view.status, view.status)} ({view.status})"
        if view.status == "closed" and view.closed_at:
            line += (
                f"  结算于 {_local(view.closed_at)}，清零 {view.points_expired} 分"
                f"（{view.lots_closed} 个批次）"
            )
        else:
            line += f"  截止 {_local(view.ends_at)}"
        click.echo(line)
    if todo:
        click.echo(f"  待办 (due now): {len(todo)} 项")
        for job, keys in _by_job(todo).items():
            shown = " ".join(keys[:SHOWN_KEYS]) + (" …" if len(keys) > SHOWN_KEYS else "")
            click.echo(f"    {job} ×{len(keys)}: {shown}")
    if runs:
        click.echo("  最近运行 (recent runs):")
        for run in runs:
            click.echo(f"    {_local(run.started_at)} {run.kind} {run.key} {run.status}")


@cycle.command("close")
@click.option("--village", "village_code", help="Only this village (default: every village).")
@click.option("--now", "now_text", help="Act as if it were this time (ISO; no offset: Beijing).")
@click.option("--yes", is_flag=True, help="Do not ask before acting with a clock in the future.")
@with_appcontext
def cycle_close(village_code: str | None, now_text: str | None, yes: bool) -> None:
    """Do all due work once now (or at --now): close ended periods by policy, open the next."""
    from api.scheduler import reconcile_now

    now = parse_now(now_text)
    if now > utcnow() and not yes:
        click.confirm(
            f"--now {_local(now)} 在未来：到期的周期会被提前结算清零，不可撤销。继续吗？"
            " (a future clock closes periods early; continue?)",
            abort=True,
        )
    village_id = None
    if village_code:
        with transaction() as s:
            village_id = pick_village(s, village_code).id
    report = reconcile_now(current_app._get_current_object(), now=now, village_id=village_id)
    click.echo(f"时间 {_local(now)}（北京时间）: {len(report.results)} 项到期")
    counts: dict[tuple[str, str], int] = {}
    for r in report.results:
        # Period work and failures line by line; routine items (posting claims) as counts.
        if r.item.job.startswith("period_") or r.status == "failed":
            extra = ""
            if r.item.job == cycles.PERIOD_CLOSE and r.detail:
                extra = f"：{r.detail['lots']} 个批次，清零 {r.detail['expired']} 分"
            click.echo(f"  {RESULT_TEXT[r.status]} ({r.status}) {r.item.job} {r.item.key}{extra}")
            if r.error:
                click.echo(f"    {r.error}", err=True)
        else:
            counts[(r.item.job, r.status)] = counts.get((r.item.job, r.status), 0) + 1
    for (job, status), n in counts.items():
        click.echo(f"  {RESULT_TEXT[status]} ({status}) {job} ×{n}")
    if report.failed:
        sys.exit(1)


@cycle.command("statement")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--village", "village_code")
@click.option("--period", required=True, help="A closed period, e.g. 2026-Q4.")
@click.option("--scheme", "scheme_code", default="household", show_default=True)
@click.option("--household", "household_number", help="One household's 户号 only.")
@with_appcontext
def cycle_statement(out: Path, village_code, period, scheme_code, household_number) -> None:
    """Write period statements (期末对账单) for a closed period to OUT.pdf or OUT.xlsx."""
    from api.cycles.statements import write_pdf, write_xlsx
    from points.cycles.statements import period_statements
    from points.honours import honour_labels

    writers = {".pdf": write_pdf, ".xlsx": write_xlsx}
    if out.suffix.lower() not in writers:
        raise click.UsageError("输出文件须以 .pdf 或 .xlsx 结尾 (OUT must end in .pdf or .xlsx)")
    try:
        with transaction(read_only=True) as s:
            v = pick_village(s, village_code)
            stmts = period_statements(
                s,
                village=v,
                period=period,
                scheme_code=scheme_code,
                household_number=household_number,
            )
            labels = honour_labels(s, village=v)
    except PointsError as exc:
        raise click.ClickException(exc.message) from exc
    if out.suffix.lower() == ".pdf":
        out.write_bytes(write_pdf(stmts, labels))
    else:
        out.write_bytes(write_xlsx(stmts, labels))
    seq, hash_ = stmts.head
    click.echo(f"已写出 {len(stmts.lines)} 户的对账单: {out}")
    click.echo(f"账本链头 (ledger head): {seq}:{hash_}")


@click.command("scheduler")
@click.option("--interval", type=click.IntRange(min=5), help="Seconds between runs (default 120).")
@with_appcontext
def scheduler_command(interval: int | None) -> None:
    """Run the scheduler in this process: reconcile at start, then every few minutes."""
    import logging

    from api.scheduler import run_dedicated

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    click.echo("调度器已启动 (scheduler started; Ctrl+C to stop)")
    run_dedicated(current_app._get_current_object(), interval=interval)
