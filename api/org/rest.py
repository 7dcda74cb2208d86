"""Villages, groups, households, residents, staff users, roster import and the audit log."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from api.db import db
from api.org.schemas import (
    AuditEventSchema,
    AuditQuerySchema,
    GroupInSchema,
    GroupSchema,
    HouseholdInSchema,
    HouseholdPageSchema,
    HouseholdQuerySchema,
    HouseholdSchema,
    PinInSchema,
    ResidentInSchema,
    ResidentSchema,
    RosterResultSchema,
    UserInSchema,
    UserSchema,
    VillageSchema,
    VillageUpdateSchema,
)
from api.rest import ApiView, FileUploadSchema, audit, documented_errors, village_for
from api.web.identity import current_actor
from points import audit as audit_log
from points import org
from points.db import utcnow
from points.models.org import Role

blp = Blueprint("org", __name__, url_prefix="/api/v1", description="村庄、农户与人员")

STAFF = (Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK)
ANY = (*STAFF, Role.RESIDENT, Role.SUPERVISOR)


def _errors(*codes):
    return documented_errors(blp, *codes)


@blp.route("/villages")
class Villages(ApiView):
    @blp.response(200, VillageSchema(many=True))
    @_errors(401)
    def get(self):
        """List the villages where I hold a role."""
        return org.list_villages(db(), actor=current_actor())


@blp.route("/villages/<code>")
class VillageItem(ApiView):
    @blp.response(200, VillageSchema)
    @_errors()
    def get(self, code):
        """Show a village."""
        return village_for(code, *ANY)

    @blp.arguments(VillageUpdateSchema)
    @blp.response(200, VillageSchema)
    @_errors(401, 403, 404, 422)
    def patch(self, data, code):
        """Change the village's name or its privacy mode for boards (named/masked/group)."""
        village = village_for(code, Role.ADMIN)
        org.update_village(db(), village=village, **data)
        audit(village, "village.update", village, f"修改村庄设置：{data}")
        return village


@blp.route("/villages/<code>/groups")
class Groups(ApiView):
    @blp.response(200, GroupSchema(many=True))
    @_errors()
    def get(self, code):
        """List the village's groups (村民小组 / 网格)."""
        return org.list_groups(db(), village=village_for(code, *STAFF))

    @blp.arguments(GroupInSchema)
    @blp.response(201, GroupSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Create a group."""
        village = village_for(code, Role.ADMIN)
        group = org.create_group(db(), village=village, name=data["name"])
        audit(village, "group.create", group, f"新建小组 {group.name}")
        return group


@blp.route("/villages/<code>/households")
class Households(ApiView):
    @blp.arguments(HouseholdQuerySchema, location="query")
    @blp.response(200, HouseholdPageSchema)
    @_errors(401, 403, 404, 422)
    def get(self, args, code):
        """Find households I may see, by household number, door plate or member name."""
        village = village_for(code, *STAFF, Role.RESIDENT)
        items, total = org.list_households(db(), village=village, actor=current_actor(), **args)
        return {"items": items, "total": total}

    @blp.arguments(HouseholdInSchema)
    @blp.response(201, HouseholdSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Create a household (一户一档)."""
        village = village_for(code, Role.ADMIN)
        home = org.create_household(db(), village=village, **data)
        audit(village, "household.create", home, f"新建农户 {home.number}")
        return home


@blp.route("/villages/<code>/households/<int:household_id>")
class HouseholdItem(ApiView):
    @blp.response(200, HouseholdSchema)
    @_errors()
    def get(self, code, household_id):
        """Show a household and its members (phones masked)."""
        village = village_for(code, *STAFF, Role.RESIDENT)
        home = org.get_household(db(), village=village, household_id=household_id)
        current_actor().require_household(village, home)
        return home


@blp.route("/villages/<code>/households/<int:household_id>/residents")
class HouseholdMembers(ApiView):
    @blp.arguments(ResidentInSchema)
    @blp.response(201, ResidentSchema)
    @_errors(401, 403, 404, 422)
    def post(self, data, code, household_id):
        """Add a member to a household."""
        village = village_for(code, Role.ADMIN)
        home = org.get_household(db(), village=village, household_id=household_id)
        person = org.add_resident(db(), village=village, household=home, **data)
        audit(village, "resident.create", person, f"农户 {home.number} 新增成员")
        return person


@blp.route("/villages/<code>/residents")
class Residents(ApiView):
    @blp.response(200, ResidentSchema(many=True))
    @_errors()
    def get(self, code):
        """List the residents of the households I may see (phones masked)."""
        village = village_for(code, *STAFF)
        party = request.args.get("party") in ("1", "true")
        return org.list_residents(db(), village=village, actor=current_actor(), party_only=party)


@blp.route("/villages/<code>/residents/<int:resident_id>/pin")
class ResidentPin(ApiView):
    @blp.arguments(PinInSchema)
    @blp.response(204)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code, resident_id):
        """Set or reset a resident's 6-digit sign-in PIN (they sign in with their phone)."""
        village = village_for(code, Role.ADMIN)
        person = org.get_resident(db(), village=village, resident_id=resident_id)
        user = org.set_resident_pin(
            db(), village=village, resident=person, pin=data["pin"], now=utcnow()
        )
        audit(village, "resident.pin", user, f"为村民 #{person.id} 设置登录 PIN", "user")


@blp.route("/villages/<code>/users")
class Users(ApiView):
    @blp.response(200, UserSchema(many=True))
    @_errors()
    def get(self, code):
        """List the village's users."""
        return org.list_users(db(), village=village_for(code, Role.ADMIN))

    @blp.arguments(UserInSchema)
    @blp.response(201, UserSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Create a staff user with one role (recorders may be limited to one group)."""
        village = village_for(code, Role.ADMIN)
        resident_id = data.pop("resident_id", None)
        user = org.create_staff_user(
            db(), village=village, new=org.NewUser(**data), resident_id=resident_id
        )
        audit(village, "user.create", user, f"新建账号 {user.username}（{data['role']}）")
        return user


@blp.route("/villages/<code>/users/<int:user_id>/unlock")
class UserUnlock(ApiView):
    @blp.response(200, UserSchema)
    @_errors()
    def post(self, code, user_id):
        """Unlock an account locked after too many wrong passwords or PINs (admins only)."""
        village = village_for(code, Role.ADMIN)
        user = org.unlock_user(db(), village=village, user_id=user_id)
        audit(village, "user.unlock", user, f"解除账号 #{user.id} 的登录锁定", "user")
        return user


@blp.route("/villages/<code>/roster")
class Roster(ApiView):
    @blp.arguments(FileUploadSchema, location="files")
    @blp.response(201, RosterResultSchema)
    @_errors(401, 403, 404, 413, 422)
    def post(self, files, code):
        """Import a household roster (花名册, .xlsx or .csv): every row checked, all or nothing."""
        from api.org.roster_io import read_roster
        from points.org import roster

        village = village_for(code, Role.ADMIN)
        upload = files["file"]
        rows = read_roster(upload.filename or "", upload.stream.read())
        result = roster.import_roster(
            db(), village=village, rows=rows, actor_id=current_actor().user_id, now=utcnow()
        )
        audit(
            village,
            "roster.import",
            village.code,
            f"导入花名册：{result.households} 户 {result.residents} 人",
            "roster",
        )
        return result


@blp.route("/villages/<code>/audit")
class Audit(ApiView):
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEventSchema(many=True))
    @_errors(401, 403, 404, 422)
    def get(self, args, code):
        """Read the audit log, newest first."""
        return audit_log.list_events(db(), village=village_for(code, Role.ADMIN), **args)


@blp.route("/villages/<code>/audit/export")
class AuditExport(ApiView):
    @blp.response(200, description="the audit log as CSV (UTF-8 with BOM, opens in Excel)")
    @_errors()
    def get(self, code):
        """Export the whole audit log as CSV."""
        import csv
        import io

        from flask import Response

        village = village_for(code, Role.ADMIN)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["编号", "时间(UTC)", "操作人", "操作", "对象", "对象编号", "内容", "地址"])
        before = None
        while True:
            events = audit_log.list_events(db(), village=village, limit=1000, before_id=before)
            for e in events:
                writer.writerow(
                    [
                        e.id,
                        e.created_at.isoformat(),
                        e.actor_id or "",
                        e.action,
                        e.object_type,
                        e.object_id or "",
                        e.summary,
                        e.remote_addr or "",
                    ]
                )
            if len(events) < 1000:
                break
            before = events[-1].id
        return Response(
            "\ufeff" + buf.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={village.code}-audit.csv"},
        )
