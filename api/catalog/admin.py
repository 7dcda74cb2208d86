"""The 积分标准 in the browser (download the adopted Excel, upload an edited sheet as the draft
with every problem listed, the diff, the dry run, adoption with the meeting record, version
history) and each scheme's settings. Routes of the catalog_pages blueprint; the same domain
calls as `points catalog …` and the REST API."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from flask import (
    after_this_request,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from api.catalog.files import CatalogFile, catalog_file, read_catalog, write_catalog
from api.catalog.pages import bp
from api.db import db
from api.web.helpers import form_errors, page_audit, page_village, render_error, signed_in
from api.web.identity import current_actor
from points import catalog, org
from points.catalog.dryrun import ledger_dry_run
from points.catalog.settings import CLOSE_POLICY_TEXT, update_scheme_settings
from points.catalog.starter import default_catalog
from points.db import utcnow
from points.effective import announced_changes
from points.errors import CatalogProblemsError, ValidationError
from points.ledger import statements
from points.models.org import Role
from points.org.settings import PRIVACY_TEXT, update_board_settings
from points.periods import local_date
from points.shop import redemption


def _scheme(village, scheme_code):
    return statements.get_scheme(db(), village=village, code=scheme_code)


@bp.get("/v/<code>/catalog")
@signed_in
def manage(code):
    """Each scheme's catalog: the version in force, the draft, and every version's history."""
    village = page_village(code, Role.ADMIN)
    s = db()
    books = []
    for scheme in statements.list_schemes(s, village=village):
        versions = catalog.list_versions(s, scheme=scheme)
        books.append(
            {
                "scheme": scheme,
                "versions": versions,
                "adopted": catalog.adopted_version(s, scheme=scheme),
                "draft": catalog.latest_draft(s, scheme=scheme),
            }
        )
    users = {u.id: u.display_name for u in org.list_users(s, village=village)}
    return render_template("staff/catalog.html", village=village, books=books, users=users)


@bp.get("/v/<code>/catalog/<scheme_code>/v<int:number>.xlsx")
@signed_in
def download(code, scheme_code, number):
    """One version as the Excel sheet cadres edit (Chinese headers, dropdowns, a help sheet)."""
    village = page_village(code, Role.ADMIN)
    scheme = _scheme(village, scheme_code)
    version = catalog.get_version(db(), scheme=scheme, number=number)
    data = catalog_file(version, village=village, scheme=scheme)
    return _send_xlsx(data, f"{village.code}-{scheme.code}-v{number}.xlsx")


@bp.get("/v/<code>/catalog/<scheme_code>/default.xlsx")
@signed_in
def download_default(code, scheme_code):
    """The default catalog as an Excel sheet: the starting point of a village's first draft."""
    village = page_village(code, Role.ADMIN)
    scheme = _scheme(village, scheme_code)
    found = default_catalog(scheme.code)
    if found is None:
        return render_error(404, f"{scheme.name}没有默认积分标准，请自行编写")
    title, rules = found
    data = CatalogFile(
        rules=rules,
        village=village.code,
        village_name=village.name,
        scheme=scheme.code,
        scheme_name=scheme.name,
        title=title,
    )
    return _send_xlsx(data, f"{village.code}-{scheme.code}-default.xlsx")


def _send_xlsx(data: CatalogFile, name: str):
    folder = tempfile.mkdtemp(prefix="catalog-")
    path = Path(folder) / name
    write_catalog(path, data)

    @after_this_request
    def _cleanup(response):
        path.unlink(missing_ok=True)
        Path(folder).rmdir()
        return response

    return send_file(path, as_attachment=True, download_name=name)


@bp.post("/v/<code>/catalog/<scheme_code>/upload")
@signed_in
def upload(code, scheme_code):
    """Save an edited sheet as the draft; on any problem list them all and change nothing."""
    village = page_village(code, Role.ADMIN)
    scheme = _scheme(village, scheme_code)
    sent = request.files.get("file")
    suffix = Path(sent.filename or "").suffix.lower() if sent else ""
    if suffix not in (".xlsx", ".yaml", ".yml", ".json"):
        flash("请选择积分标准文件（.xlsx）", "error")
        return redirect(url_for("catalog_pages.manage", code=code))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"catalog{suffix}"
            path.write_bytes(sent.read())
            data = read_catalog(path)
        draft, _created = catalog.save_draft(
            db(),
            scheme=scheme,
            rules=data.rules,
            categories=data.categories,
            title=data.title or "",
            actor_id=current_actor().user_id,
            now=utcnow(),
        )
    except CatalogProblemsError as exc:
        db().rollback()
        return render_template(
            "staff/catalog_problems.html",
            village=village,
            scheme=scheme,
            problems=[str(p) for p in exc.problems],
        ), 422
    page_audit(
        village,
        "catalog.import",
        draft,
        f"网页上传{scheme.name}第 {draft.number} 版草案",
        "catalog_version",
    )
    flash(f"已保存为第 {draft.number} 版草案，请核对改动并试算", "ok")
    return redirect(url_for("catalog_pages.draft", code=code, scheme_code=scheme.code))


@bp.get("/v/<code>/catalog/<scheme_code>/draft")
@signed_in
def draft(code, scheme_code):
    """The draft against the catalog in force: its changes, the dry run, and adoption."""
    village = page_village(code, Role.ADMIN)
    s = db()
    scheme = _scheme(village, scheme_code)
    version = catalog.latest_draft(s, scheme=scheme)
    if version is None:
        return render_error(404, f"{scheme.name}没有草案，请先上传修改后的积分标准")
    base = catalog.adopted_version(s, scheme=scheme)
    diff = catalog.diff_versions(base, version)
    months = request.args.get("months", type=int)
    trial = labels = None
    if months:
        months = max(1, min(months, 24))
        trial, labels = ledger_dry_run(s, version=version, months=months, now=utcnow())
    return render_template(
        "staff/catalog_draft.html",
        village=village,
        scheme=scheme,
        version=version,
        base=base,
        diff=diff,
        months=months,
        trial=trial,
        labels=labels or {},
        today=local_date(utcnow()).isoformat(),
    )


def _meeting_note(form) -> str:
    """The meeting record in words: attendance and votes, then the clerk's note."""
    counts = {k: form.get(k, "").strip() for k in ("expected", "present", "yes", "no", "abstain")}
    for key, value in counts.items():
        if value and not value.isdigit():
            raise ValidationError("人数和票数应为整数", errors={key: ["应为整数"]})
    parts = []
    if counts["expected"] or counts["present"]:
        parts.append(f"应到 {counts['expected'] or '—'} 人，实到 {counts['present'] or '—'} 人")
    if counts["yes"] or counts["no"] or counts["abstain"]:
        parts.append(
            f"赞成 {counts['yes'] or 0} 票，反对 {counts['no'] or 0} 票，"
            f"弃权 {counts['abstain'] or 0} 票"
        )
    note = form.get("note", "").strip()
    return "；".join(parts + ([note] if note else []))


@bp.post("/v/<code>/catalog/<scheme_code>/adopt")
@signed_in
def adopt(code, scheme_code):
    """Record the meeting's vote: the draft becomes the catalog in force."""
    village = page_village(code, Role.ADMIN)
    scheme = _scheme(village, scheme_code)
    form = request.form
    with form_errors(ValueError):
        version = catalog.get_version(db(), scheme=scheme, number=int(form.get("number") or 0))
        effective = form.get("effective_from", "").strip()
        catalog.adopt(
            db(),
            version=version,
            body=form.get("body", ""),
            adopted_on=date.fromisoformat(form.get("adopted_on", "")),
            effective_from=date.fromisoformat(effective) if effective else None,
            note=_meeting_note(form),
            actor_id=current_actor().user_id,
            now=utcnow(),
        )
        page_audit(
            village,
            "catalog.adopt",
            version,
            f"{version.adopted_by_body}通过{scheme.name}第 {version.number} 版",
            "catalog_version",
            note=version.note,
        )
        flash(f"第 {version.number} 版已通过，{version.effective_from} 起施行", "ok")
        return redirect(url_for("catalog_pages.manage", code=code))
    return redirect(url_for("catalog_pages.draft", code=code, scheme_code=scheme_code))


# --- scheme settings ---------------------------------------------------------------------------


def _int(form, key: str, default: int | None = None) -> int | None:
    value = form.get(key, "").strip()
    if not value:
        return default
    if not value.lstrip("-").isdigit():
        raise ValidationError(f"“{value}”不是整数", errors={key: ["应为整数"]})
    return int(value)


def _effective_date(form, today: date) -> date:
    value = form.get("effective_from", "").strip()
    if not value:
        return today
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"生效日期“{value}”格式不对", errors={"effective_from": ["应为日期，如 2026-12-01"]}
        ) from None


@bp.route("/v/<code>/settings", methods=["GET", "POST"])
@signed_in
def settings(code):
    """Each scheme's 兑换门槛, window, 公示 days, close policy and stars; the board settings,
    each from a stated date (today by default; a later date is announced until then)."""
    village = page_village(code, Role.ADMIN)
    s = db()
    schemes = statements.list_schemes(s, village=village)
    if request.method == "POST":
        form, now = request.form, utcnow()
        today = local_date(now)
        actor_id = current_actor().user_id
        with form_errors():
            when = _effective_date(form, today)
            if form.get("scheme"):
                scheme = _scheme(village, form["scheme"])
                stars = form.get("star_thresholds", "").replace("，", ",").strip()
                changed = update_scheme_settings(
                    s,
                    scheme=scheme,
                    redemption_threshold=_int(form, "redemption_threshold", 0),
                    notice_days=_int(form, "notice_days", 0),
                    close_policy=form.get("close_policy", ""),
                    expire_after_n=_int(form, "expire_after_n"),
                    base_score=_int(form, "base_score", 0),
                    star_thresholds=[int(x) for x in stars.split(",") if x.strip().isdigit()]
                    if stars
                    else None,
                    window_days=_int(form, "window_days") if scheme.redeemable else None,
                    effective_from=when,
                    today=today,
                    actor_id=actor_id,
                    now=now,
                )
                target, kind, what = scheme, "scheme", scheme.name
            else:
                changed = update_board_settings(
                    s,
                    village=village,
                    privacy_mode=form.get("privacy_mode", ""),
                    black_months=_int(form, "black_months", 0),
                    board_top_n=_int(form, "board_top_n", 0),
                    effective_from=when,
                    today=today,
                    actor_id=actor_id,
                    now=now,
                )
                target, kind, what = village, "village", "红黑榜"
            if changed:
                text = "，".join(f"{k} {old}→{new}" for k, (old, new) in changed.items())
                start = "即日起" if when <= today else f"自 {when.isoformat()} 起"
                page_audit(
                    village,
                    f"{kind}.settings",
                    target,
                    f"修改{what}设置（{start}生效）：{text}",
                    kind,
                    changes={k: [o, n] for k, (o, n) in changed.items()},
                    effective_from=when.isoformat(),
                )
                if when <= today:
                    flash(f"已保存{what}设置，即日起生效", "ok")
                else:
                    flash(
                        f"已保存{what}设置，将于 {when.isoformat()} 起生效，并已在积分标准页预告",
                        "ok",
                    )
            else:
                flash("没有改动", "ok")
        return redirect(url_for("catalog_pages.settings", code=code))
    now = utcnow()
    today = local_date(now)
    windows = {
        sc.id: redemption.get_window(s, scheme=sc, now=now) for sc in schemes if sc.redeemable
    }
    upcoming = announced_changes(s, village=village, schemes=schemes, today=today)
    return render_template(
        "staff/settings.html",
        village=village,
        schemes=schemes,
        windows=windows,
        policies=CLOSE_POLICY_TEXT,
        privacy=PRIVACY_TEXT,
        today=today.isoformat(),
        upcoming=upcoming,
    )
