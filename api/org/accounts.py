"""Sign-in for people: residents' PINs (set, reset, printed on slips handed over in person)
and staff accounts (create, roles, grid group, disable, new password, own resident record).
Routes of the org_pages blueprint."""

from __future__ import annotations

import secrets

from flask import Response, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from api.db import db
from api.org.pages import bp
from api.org.pin_slip import Slip, render_slips
from api.web.helpers import form_errors, page_audit, page_village, render_error, signed_in
from api.web.identity import current_actor
from points import org
from points.auth.passwords import check_password
from points.db import utcnow
from points.errors import ValidationError
from points.models import Resident, User
from points.models.org import Role
from points.org import households as roster_admin
from points.org import staff as accounts
from points.org.access import STAFF_ROLES


def _random_pin() -> str:
    """A PIN nobody guesses: random, never one digit repeated or a plain run like 123456."""
    while True:
        pin = f"{secrets.randbelow(10**6):06d}"
        steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}
        if len(set(pin)) >= 3 and len(steps) > 1:
            return pin


@bp.route("/v/<code>/pins", methods=["GET", "POST"])
@signed_in
def pins(code):
    """Set or reset residents' PINs (typed, or a random one each); then print their slips."""
    village = page_village(code, Role.ADMIN)
    s = db()
    if request.method == "POST":
        chosen = [int(r) for r in request.form.getlist("resident_id") if r.isdigit()]
        typed = request.form.get("pin", "").strip()
        if not chosen or (typed and len(chosen) > 1):
            # One typed PIN for several people would let each sign in as the others' household.
            flash(
                "请勾选要设置 PIN 码的村民"
                if not chosen
                else "手动填写的 PIN 码只能给一位村民；多位村民请留空，由系统逐个随机生成",
                "error",
            )
            return redirect(url_for("org_pages.pins", code=code))
        done = []
        with form_errors():
            for resident_id in chosen:
                person = org.get_resident(s, village=village, resident_id=resident_id)
                pin = typed or _random_pin()
                user = org.set_resident_pin(
                    s, village=village, resident=person, pin=pin, now=utcnow()
                )
                page_audit(
                    village,
                    "resident.pin",
                    person,
                    f"设置村民 {person.name} 的登录 PIN 码",
                    "resident",
                    user_id=user.id,
                )
                done.append((person, pin))
            return render_template(
                "staff/pins_done.html", village=village, done=done, mask=org.mask_phone
            )
        return redirect(url_for("org_pages.pins", code=code))
    q = request.args.get("q", "").strip()
    people = roster_admin.residents_for_sign_in(s, village=village, q=q)
    return render_template(
        "staff/pins.html", village=village, people=people, q=q, mask=org.mask_phone
    )


@bp.post("/v/<code>/pins/slips.pdf")
@signed_in
def pin_slips(code):
    """The slips of PINs just set, A4, eight a page; a PIN that no longer signs in is refused."""
    village = page_village(code, Role.ADMIN)
    s = db()
    slips = []
    for pair in request.form.getlist("slip"):
        resident_id, _, pin = pair.partition(":")
        person = org.get_resident(s, village=village, resident_id=int(resident_id or 0))
        login = s.execute(select(User).where(User.resident_id == person.id)).scalar_one_or_none()
        if login is None or not login.pin_hash or not check_password(login.pin_hash, pin):
            return render_error(409, f"{person.name} 的 PIN 码已经改过，请重新设置后再打印")
        slips.append(
            Slip(
                village_name=village.name,
                resident_name=person.name,
                household_number=person.household.number,
                phone_masked=org.mask_phone(person.phone) or "",
                pin=pin,
                sign_in_url=url_for("pages.login", _external=True),
            )
        )
    if not slips:
        return render_error(400, "没有要打印的凭条")
    page_audit(village, "resident.pin_slips", village, f"打印登录凭条 {len(slips)} 张", "village")
    response = Response(render_slips(slips), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f"attachment; filename={village.code}-pins.pdf"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- staff accounts --------------------------------------------------------------------------


def _roles_from(form) -> set[str]:
    return {r for r in form.getlist("role") if r in STAFF_ROLES}


def _int_or_none(value) -> int | None:
    return int(value) if value and str(value).isdigit() else None


@bp.route("/v/<code>/staff", methods=["GET", "POST"])
@signed_in
def staff(code):
    """The village's staff accounts; create one."""
    village = page_village(code, Role.ADMIN)
    s = db()
    if request.method == "POST":
        form = request.form
        with form_errors():
            roles = _roles_from(form)
            if not roles:
                raise ValidationError("请至少选择一个角色", errors={"role": ["不能为空"]})
            group_id = _int_or_none(form.get("group_id"))
            user = org.create_staff_user(
                s,
                village=village,
                new=org.NewUser(
                    username=form.get("username", "").strip(),
                    display_name=form.get("display_name", "").strip() or form.get("username", ""),
                    password=form.get("password", ""),
                    role=sorted(roles)[0],
                    group_id=group_id,
                ),
                resident_id=_int_or_none(form.get("resident_id")),
            )
            accounts.set_roles(
                s,
                village=village,
                user=user,
                roles=roles,
                group_id=group_id,
                actor_id=current_actor().user_id,
            )
            page_audit(
                village,
                "user.create",
                user,
                f"新建工作人员账号 {user.username}（{'、'.join(sorted(roles))}）",
                "user",
                roles=sorted(roles),
                group_id=group_id,
            )
            flash(f"已新建账号 {user.username}", "ok")
        return redirect(url_for("org_pages.staff", code=code))
    users = [u for u in org.list_users(s, village=village) if accounts.village_roles(u, village)]
    return render_template("staff/staff.html", village=village, users=users, **_choices(village))


def _choices(village) -> dict:
    s = db()
    return {
        "groups": org.list_groups(s, village=village),
        "role_names": accounts.ROLE_NAMES,
        "residents": {
            r.id: r
            for r in s.execute(
                select(Resident).where(Resident.village_id == village.id).order_by(Resident.id)
            ).scalars()
        },
        "village_roles": accounts.village_roles,
    }


@bp.route("/v/<code>/staff/<int:user_id>", methods=["GET", "POST"])
@signed_in
def staff_user(code, user_id):
    """One staff account: roles and group, active, new password, own resident record."""
    village = page_village(code, Role.ADMIN)
    s = db()
    user = accounts.get_staff_user(s, village=village, user_id=user_id)
    if request.method == "POST":
        form, me = request.form, current_actor().user_id
        action = form.get("action")
        with form_errors():
            if action == "roles":
                roles, group_id = _roles_from(form), _int_or_none(form.get("group_id"))
                accounts.set_roles(
                    s, village=village, user=user, roles=roles, group_id=group_id, actor_id=me
                )
                summary = f"账号 {user.username} 的角色改为 {'、'.join(sorted(roles))}"
            elif action in ("disable", "enable"):
                accounts.set_active(s, user=user, active=action == "enable", actor_id=me)
                summary = f"{'启用' if user.active else '停用'}账号 {user.username}"
            elif action == "password":
                accounts.set_password(s, user=user, password=form.get("password", ""))
                summary = f"重置账号 {user.username} 的密码"
            elif action == "link":
                accounts.link_resident(
                    s, village=village, user=user, resident_id=_int_or_none(form.get("resident_id"))
                )
                summary = f"账号 {user.username} 关联本人村民档案"
            else:
                return render_error(400, "不支持的操作")
            page_audit(village, f"user.{action}", user, summary, "user")
            flash(summary, "ok")
        return redirect(url_for("org_pages.staff_user", code=code, user_id=user_id))
    return render_template("staff/staff_user.html", village=village, user=user, **_choices(village))


# --- the town: its supervisors and each village's first admin ----------------------------------


@bp.route("/town/<town>/accounts", methods=["GET", "POST"])
@signed_in
def town_accounts(town):
    """A town supervisor creates other supervisors and each village's first admin."""
    from points.errors import PermissionDeniedError
    from points.models import Village

    if town not in current_actor().towns():
        raise PermissionDeniedError("只有本镇督导员可以管理本镇账号")
    s = db()
    villages = list(
        s.execute(select(Village).where(Village.town == town).order_by(Village.code)).scalars()
    )
    if request.method == "POST":
        form = request.form
        with form_errors():
            fields = {
                "username": form.get("username", "").strip(),
                "display_name": form.get("display_name", ""),
                "password": form.get("password", ""),
            }
            if form.get("village"):
                village = org.get_village(s, form["village"])
                user = accounts.create_first_admin(s, village=village, town=town, **fields)
                summary = f"为{village.name}创建首个管理员 {user.username}"
                page_audit(village, "user.first_admin", user, summary, "user")
            else:
                user = accounts.create_town_supervisor(s, town=town, **fields)
                summary = f"创建{town}督导员 {user.username}"
                page_audit(None, "user.supervisor", user, summary, "user", town=town)
            flash(summary, "ok")
        return redirect(url_for("org_pages.town_accounts", town=town))
    supervisors = [
        u
        for u in s.execute(select(User).order_by(User.id)).scalars()
        if any(r.role == Role.SUPERVISOR and r.town == town for r in u.roles)
    ]
    return render_template(
        "staff/town_accounts.html", town=town, villages=villages, supervisors=supervisors
    )
