"""The 村两委's org pages: the roster (花名册) upload with a preview of every problem before
anything is written, households and residents kept true afterwards, and the audit log.
Resident PINs and staff accounts are in api/org/accounts.py (same blueprint)."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from api.db import db, writes_on_get
from api.org.roster_io import TEMPLATE_ROWS, read_roster, write_roster_xlsx
from api.web.helpers import form_errors, page_audit, page_village, signed_in
from api.web.identity import current_actor
from points import audit as audit_log
from points import org
from points.db import utcnow
from points.errors import ValidationError
from points.models.org import ResidentStatus, Role
from points.org import households as roster_admin
from points.org.roster import (
    COLUMNS,
    Problem,
    RosterProblemsError,
    import_roster,
    validate_rows,
)
from points.periods import local_date

bp = Blueprint("org_pages", __name__, template_folder="templates")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@bp.get("/v/<code>/audit")
@signed_in
def audit(code):
    """The audit log, newest first."""
    village = page_village(code, Role.ADMIN)
    events = audit_log.list_events(db(), village=village, limit=300)
    return render_template("staff/audit.html", village=village, events=events)


# --- the roster: upload, preview, confirm; template and current roster --------------------------


def _held(token: str, kind: str) -> Path:
    """Where an uploaded roster waits between its preview and the confirmation."""
    if not _TOKEN.match(token or "") or kind not in ("xlsx", "csv"):
        raise FileNotFoundError(token)
    folder = Path(current_app.instance_path) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"roster-{token}.{kind}"


def _forget_old_previews() -> None:
    """Remove previews nobody confirmed within a day (they hold people's names and phones)."""
    folder = Path(current_app.instance_path) / "uploads"
    cutoff = time.time() - 24 * 3600
    for path in folder.glob("roster-*"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


@bp.get("/v/<code>/roster")
@signed_in
def roster(code):
    """Upload a 花名册; download the template or the current roster."""
    village = page_village(code, Role.ADMIN)
    _homes, total = org.list_households(db(), village=village, actor=current_actor(), limit=1)
    return render_template("staff/roster.html", village=village, total=total, preview=None)


@bp.post("/v/<code>/roster")
@signed_in
def roster_upload(code):
    """Check an uploaded roster and show every problem, or what would be imported; write nothing."""
    village = page_village(code, Role.ADMIN)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("请选择花名册文件（.xlsx 或 .csv）", "error")
        return redirect(url_for("org_pages.roster", code=code))
    data = upload.read()
    try:
        rows = read_roster(upload.filename, data)
        problems = (
            validate_rows(db(), village=village, rows=rows)
            if rows
            else [Problem(1, "表头", "花名册没有数据行")]
        )
    except RosterProblemsError as exc:
        rows, problems = [], exc.problems
    token = kind = None
    if not problems:
        token = secrets.token_urlsafe(18)
        kind = "xlsx" if upload.filename.lower().endswith(".xlsx") else "csv"
        _held(token, kind).write_bytes(data)
        _forget_old_previews()
    homes = len({str(r.get("number") or "").strip() for _n, r in rows})
    preview = {
        "filename": upload.filename,
        "rows": rows[:200],
        "count": len(rows),
        "households": homes,
        "problems": problems,
        "token": token,
        "kind": kind,
    }
    status = 422 if problems else 200
    return render_template(
        "staff/roster.html",
        village=village,
        total=None,
        preview=preview,
        columns=COLUMNS,
        mask=org.mask_phone,
    ), status


@bp.post("/v/<code>/roster/confirm")
@signed_in
def roster_confirm(code):
    """Import the roster that was previewed; every row lands or none does."""
    village = page_village(code, Role.ADMIN)
    kind = request.form.get("kind", "")
    try:
        path = _held(request.form.get("token", ""), kind)
        data = path.read_bytes()
    except FileNotFoundError:
        flash("预览已失效，请重新上传花名册", "error")
        return redirect(url_for("org_pages.roster", code=code))
    with form_errors():
        rows = read_roster(f"roster.{kind}", data)
        result = import_roster(
            db(), village=village, rows=rows, actor_id=current_actor().user_id, now=utcnow()
        )
        page_audit(
            village,
            "roster.import",
            village,
            f"网页导入花名册：{result.households} 户 {result.residents} 人",
            "village",
            households=result.households,
            residents=result.residents,
            opening_entries=result.opening_entries,
        )
        path.unlink(missing_ok=True)
        flash(
            f"已导入 {result.households} 户、{result.residents} 人"
            f"（新建小组 {result.groups_created} 个，期初积分 {result.opening_entries} 户）",
            "ok",
        )
        return redirect(url_for("org_pages.households", code=code))
    return redirect(url_for("org_pages.roster", code=code))


def _xlsx(data: bytes, name: str) -> Response:
    response = Response(
        data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    return response


@bp.get("/v/<code>/roster/template.xlsx")
@signed_in
def roster_template(code):
    """The empty 花名册 with its columns and two example rows."""
    page_village(code, Role.ADMIN)
    headers = dict(COLUMNS)
    return _xlsx(write_roster_xlsx(headers, TEMPLATE_ROWS, title="花名册"), "roster-template.xlsx")


@bp.get("/v/<code>/roster/current.xlsx")
@writes_on_get  # the download is recorded in the audit log
@signed_in
def roster_current(code):
    """The village's roster as it stands, people who left included with their status."""
    village = page_village(code, Role.ADMIN)
    rows = roster_admin.roster_rows(db(), village=village)
    page_audit(village, "roster.export", village, f"下载花名册 {len(rows)} 人", "village")
    data = write_roster_xlsx(roster_admin.ROSTER_HEADERS, rows, title="花名册")
    return _xlsx(data, f"{village.code}-roster.xlsx")


# --- households and residents ----------------------------------------------------------------


@bp.route("/v/<code>/households", methods=["GET", "POST"])
@signed_in
def households(code):
    """Find a household; add one."""
    village = page_village(code, Role.ADMIN)
    groups = org.list_groups(db(), village=village)
    if request.method == "POST":
        with form_errors(ValueError):
            if request.form.get("new_group"):
                group = org.create_group(db(), village=village, name=request.form["new_group"])
                page_audit(village, "group.create", group, f"新建小组 {group.name}", "group")
                flash(f"已新建小组“{group.name}”", "ok")
                return redirect(url_for("org_pages.households", code=code))
            home = org.create_household(
                db(),
                village=village,
                group_id=int(request.form.get("group_id") or 0),
                number=request.form.get("number", ""),
                door_plate=request.form.get("door_plate") or None,
            )
            head = org.add_resident(
                db(),
                village=village,
                household=home,
                name=request.form.get("head_name", ""),
                phone=request.form.get("phone") or None,
                is_head=True,
            )
            page_audit(
                village,
                "household.create",
                home,
                f"新建农户 {home.number}（户主 {head.name}）",
                "household",
            )
            flash(f"已新建农户 {home.number}", "ok")
            return redirect(url_for("org_pages.household", code=code, household_id=home.id))
        return redirect(url_for("org_pages.households", code=code))
    q = request.args.get("q", "").strip() or None
    group_id = request.args.get("group_id", type=int)
    homes, total = org.list_households(
        db(), village=village, actor=current_actor(), q=q, group_id=group_id, limit=200
    )
    names = {g.id: g.name for g in groups}
    return render_template(
        "staff/households.html",
        village=village,
        homes=homes,
        total=total,
        groups=groups,
        names=names,
        q=q or "",
        group_id=group_id,
    )


@bp.get("/v/<code>/households/<int:household_id>")
@signed_in
def household(code, household_id):
    """One household: its members, head, group; every change the roster needs."""
    village = page_village(code, Role.ADMIN)
    home = org.get_household(db(), village=village, household_id=household_id)
    return render_template(
        "staff/household.html",
        village=village,
        home=home,
        groups=org.list_groups(db(), village=village),
        statuses=roster_admin.STATUS_NAMES,
        mask=org.mask_phone,
    )


@bp.post("/v/<code>/households/<int:household_id>")
@signed_in
def household_change(code, household_id):
    """Apply one change to a household or one of its members (the form's `action`)."""
    village = page_village(code, Role.ADMIN)
    home = org.get_household(db(), village=village, household_id=household_id)
    form, s, me = request.form, db(), current_actor().user_id
    action = form.get("action")
    with form_errors(ValueError):
        person = (
            org.get_resident(s, village=village, resident_id=int(form["resident_id"]))
            if form.get("resident_id")
            else None
        )
        if person is not None and person.household_id != home.id:
            raise ValueError("not a member")
        if action == "household":
            old_group = home.group_id
            roster_admin.update_household(
                s,
                village=village,
                household=home,
                group_id=int(form.get("group_id") or home.group_id),
                door_plate=form.get("door_plate", ""),
            )
            moved = "，换到新小组" if old_group != home.group_id else ""
            summary = f"修改农户 {home.number} 门牌/小组{moved}"
            page_audit(
                village,
                "household.update",
                home,
                summary,
                "household",
                group_id=home.group_id,
                old_group_id=old_group,
            )
        elif action == "head" and person is not None:
            roster_admin.set_head(s, household=home, resident=person)
            summary = f"农户 {home.number} 户主改为 {person.name}"
            page_audit(village, "household.head", home, summary, "household", head=person.id)
        elif action == "add":
            person = org.add_resident(
                s,
                village=village,
                household=home,
                name=form.get("name", ""),
                phone=form.get("phone") or None,
                is_party_member=form.get("is_party_member") == "1",
                party_branch=form.get("party_branch") or None,
            )
            summary = f"农户 {home.number} 新增成员 {person.name}"
            page_audit(village, "resident.create", person, summary, "resident")
        elif action == "resident" and person is not None:
            old_phone = person.phone
            roster_admin.update_resident(
                s,
                resident=person,
                name=form.get("name"),
                # Blank keeps the number (the form never shows it in full); a tick removes it.
                phone="" if form.get("clear_phone") else (form.get("phone", "").strip() or None),
                is_party_member=form.get("is_party_member") == "1",
                party_branch=form.get("party_branch", ""),
            )
            phone_note = "，更换手机号" if old_phone != person.phone else ""
            summary = f"修改村民 {person.name} 的信息{phone_note}"
            page_audit(
                village,
                "resident.update",
                person,
                summary,
                "resident",
                phone_changed=old_phone != person.phone,
            )
        elif action == "status" and person is not None:
            roster_admin.set_resident_status(
                s, resident=person, status=form.get("status", ""), on=local_date(utcnow())
            )
            label = roster_admin.STATUS_NAMES[ResidentStatus(person.status)]
            summary = f"村民 {person.name} 标记为{label}"
            page_audit(
                village, "resident.status", person, summary, "resident", status=person.status
            )
        elif action == "merge":
            other = _household_by_number(village, form.get("number", ""))
            moved = roster_admin.merge_households(
                s, village=village, keep=home, absorb=other, actor_id=me, now=utcnow()
            )
            _revoke_card(village, other)
            points = "，".join(f"{m.scheme}转入 {m.points} 分" for m in moved) or "没有积分转入"
            summary = f"户号 {other.number} 并入 {home.number}（{points}）"
            page_audit(village, "household.merge", home, summary, "household", absorbed=other.id)
        elif action == "split":
            members = [
                org.get_resident(s, village=village, resident_id=int(r))
                for r in form.getlist("member_id")
            ]
            new, moved = roster_admin.split_household(
                s,
                village=village,
                household=home,
                members=members,
                number=form.get("number", ""),
                group_id=int(form.get("group_id") or home.group_id),
                door_plate=form.get("door_plate") or None,
                points=int(form.get("points") or 0),
                actor_id=me,
                now=utcnow(),
            )
            points = f"，{moved.scheme}转入 {moved.points} 分" if moved else "，积分留在原户"
            summary = f"从户号 {home.number} 分出 {new.number}（{len(members)} 人{points}）"
            page_audit(village, "household.split", new, summary, "household", source=home.id)
        else:
            raise ValueError(action)
        flash(summary, "ok")
    return redirect(url_for("org_pages.household", code=code, household_id=household_id))


def _household_by_number(village, number: str):
    homes, _total = org.list_households(
        db(), village=village, actor=current_actor(), q=number.strip(), limit=50
    )
    found = next((h for h in homes if h.number == number.strip()), None)
    if found is None:
        raise ValidationError(f"本村没有户号 {number}", errors={"number": ["找不到"]})
    return found


def _revoke_card(village, household) -> None:
    """A merged household's card is refused from now on (its points moved away)."""
    from points.shop import credentials

    for card in credentials.list_cards(db(), village=village, household_ids=[household.id]):
        credentials.revoke_card(
            db(),
            village=village,
            card_id=card.id,
            actor_id=current_actor().user_id,
            reason="合户后作废",
            now=utcnow(),
        )
