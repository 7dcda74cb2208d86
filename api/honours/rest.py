"""Honours over the API: the year's lists (draft, nominate, approve, publish, withdraw),
appeals and corrections, 民主评议, my household's honours, the public lists and records, and
the town's counts."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.db import db
from api.honours.schemas import (
    HonourAppealSchema,
    HonourDraftInSchema,
    HonourListSchema,
    HonourListSummarySchema,
    HonourNominationInSchema,
    HonourReasonInSchema,
    HonourResolveInSchema,
    HonourYearQuerySchema,
    HouseholdHonourSchema,
    PartyReviewInSchema,
    PartyReviewSchema,
    PublicHonourListSchema,
    TownHonoursSchema,
)
from api.rest import ApiView, audit, documented_errors, village_for
from api.web.identity import current_actor
from points import honours, org
from points.db import utcnow
from points.errors import NotFoundError, PermissionDeniedError
from points.models.honours import HonourAppeal
from points.models.org import Role

blp = Blueprint("honours", __name__, url_prefix="/api/v1", description="评星与表彰")

STAFF = (Role.ADMIN, Role.REVIEWER)


def _doc(*codes):
    return documented_errors(blp, *codes)


def _list(code, list_id, *roles):
    village = village_for(code, *roles)
    return village, honours.get_list(db(), village=village, list_id=list_id)


def _step(code, list_id, action, fn, roles=(Role.ADMIN,), **kwargs):
    """Run one step on a list, audit it, and return the list as staff see it."""
    village, item = _list(code, list_id, *roles)
    fn(db(), item=item, actor=current_actor(), **kwargs)
    audit(
        village,
        f"honour.{action}",
        item,
        f"{honours.when_text(item)}{honours.kind_text(item.kind)}：{action}",
    )
    db().refresh(item)
    return honours.staff_view(db(), item)


@blp.route("/villages/<code>/honours")
class Lists(ApiView):
    @blp.arguments(HonourYearQuerySchema, location="query")
    @blp.response(200, HonourListSummarySchema(many=True))
    @_doc(401, 403, 404, 422)
    def get(self, args, code):
        """List the village's honour lists, drafts included, newest year first."""
        village = village_for(code, *STAFF)
        return honours.list_lists(db(), village=village, public=False, year=args.get("year"))

    @blp.arguments(HonourDraftInSchema)
    @blp.response(201, HonourListSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Draft an ended year's list of a kind from scores (the scheduler does it in January),
        or a closed period's 星级文明户 when the household scheme designates per period."""
        village = village_for(code, Role.ADMIN)
        item = honours.draft_list(
            db(), village=village, kind=data["kind"], year=data.get("year"),
            period=data.get("period", ""), now=utcnow(), actor_id=current_actor().user_id,
        )  # fmt: skip
        audit(
            village,
            "honour.draft",
            item,
            f"起草{honours.when_text(item)}{honours.kind_text(item.kind)}",
        )
        return honours.staff_view(db(), item)


@blp.route("/villages/<code>/honours/<int:list_id>")
class ListItem(ApiView):
    @blp.response(200, HonourListSchema)
    @_doc(401, 403, 404)
    def get(self, code, list_id):
        """Show a list with real and public names and removals (the 村两委, the review group)."""
        return honours.staff_view(db(), _list(code, list_id, *STAFF)[1])


@blp.route("/villages/<code>/honours/<int:list_id>/nominations")
class Nominations(ApiView):
    @blp.arguments(HonourNominationInSchema)
    @blp.response(201, HonourListSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, list_id):
        """Nominate someone for a draft 表彰 or 道德模范 list (consent noted for the roll)."""
        return _step(code, list_id, "nominate", honours.nominate, STAFF, **data)


@blp.route("/villages/<code>/honours/<int:list_id>/approve")
class Approve(ApiView):
    @blp.response(200, HonourListSchema)
    @_doc(401, 403, 404, 409)
    def post(self, code, list_id):
        """Approve a draft (not by whoever drafted it or nominated on it)."""
        return _step(code, list_id, "approve", honours.approve_list, now=utcnow())


@blp.route("/villages/<code>/honours/<int:list_id>/publish")
class Publish(ApiView):
    @blp.response(200, HonourListSchema)
    @_doc(401, 403, 404, 409)
    def post(self, code, list_id):
        """Publish an approved list: names frozen per privacy mode, the ledger head printed."""
        return _step(code, list_id, "publish", honours.publish_list, now=utcnow())


@blp.route("/villages/<code>/honours/<int:list_id>/withdraw")
class Withdraw(ApiView):
    @blp.arguments(HonourReasonInSchema)
    @blp.response(200, HonourListSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, list_id):
        """Withdraw a published list; a notice with the reason stays visible."""
        return _step(
            code, list_id, "withdraw", honours.withdraw_list, reason=data["reason"], now=utcnow()
        )


@blp.route("/villages/<code>/honours/<int:list_id>/entries/<int:honour_entry_id>/appeals")
class Appeals(ApiView):
    @blp.arguments(HonourReasonInSchema)
    @blp.response(201, HonourAppealSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, list_id, honour_entry_id):
        """Appeal an entry about my household on a published list."""
        village, item = _list(code, list_id, Role.RESIDENT)
        out = honours.appeal(
            db(), item=item, entry_id=honour_entry_id, actor=current_actor(),
            reason=data["reason"], now=utcnow(),
        )  # fmt: skip
        audit(village, "honour.appeal", out, "对荣誉名单提出申诉", "honour_appeal")
        return out


@blp.route("/villages/<code>/honour-appeals")
class AppealList(ApiView):
    @blp.response(200, HonourAppealSchema(many=True))
    @_doc(401, 403, 404)
    def get(self, code):
        """List appeals against honour lists, newest first."""
        return honours.list_appeals(db(), village=village_for(code, *STAFF))


@blp.route("/villages/<code>/honour-appeals/<int:honour_appeal_id>/resolve")
class AppealResolve(ApiView):
    @blp.arguments(HonourResolveInSchema)
    @blp.response(200, HonourAppealSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, honour_appeal_id):
        """Resolve an appeal: upheld publishes a correction (stars changed, or the entry off)."""
        village = village_for(code, *STAFF)
        item = db().get(HonourAppeal, honour_appeal_id)
        if item is None or item.village_id != village.id:
            raise NotFoundError("找不到该申诉")
        out = honours.resolve_appeal(
            db(), appeal=item, actor=current_actor(), uphold=data["uphold"],
            resolution=data["resolution"], stars=data.get("stars"), now=utcnow(),
        )  # fmt: skip
        audit(village, "honour.appeal_resolve", item, "处理荣誉申诉", "honour_appeal")
        return out


@blp.route("/villages/<code>/party-reviews")
class Reviews(ApiView):
    @blp.arguments(PartyReviewInSchema)
    @blp.response(201, PartyReviewSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Record a party member's 民主评议 for a year (the branch secretary)."""
        village = village_for(code, Role.ADMIN)
        row = honours.record_review(
            db(), village=village, actor=current_actor(), now=utcnow(), **data
        )
        audit(village, "honour.review", row, f"录入 {row.year} 年度民主评议", "party_review")
        return row


@blp.route("/villages/<code>/my/honours")
class Mine(ApiView):
    @blp.response(200, HouseholdHonourSchema(many=True))
    @_doc(401, 403, 404)
    def get(self, code):
        """My household's published honours, newest year first."""
        village = village_for(code, Role.RESIDENT)
        household = current_actor().household_id
        if household is None:
            raise PermissionDeniedError("您的账号没有关联农户")
        return honours.household_honours(db(), village=village, household_id=household)


@blp.route("/towns/<town>/honours")
class Town(ApiView):
    @blp.arguments(HonourYearQuerySchema, location="query")
    @blp.response(200, TownHonoursSchema(many=True))
    @_doc(401, 403, 422)
    def get(self, args, town):
        """Each village of my town: how many stars and honours it published (counts only)."""
        if town not in current_actor().towns():
            raise PermissionDeniedError("只有本镇督导员可以查看全镇汇总")
        year = args.get("year") or utcnow().year - 1
        return honours.town_counts(db(), town=town, year=year)


# --- public: no sign-in -----------------------------------------------------------------------


@blp.route("/public/<code>/honours")
class PublicLists(ApiView):
    @blp.response(200, HonourListSummarySchema(many=True))
    @blp.alt_response(404, description="找不到")
    def get(self, code):
        """Published, withdrawn and corrected honour lists (no sign-in needed)."""
        return honours.list_lists(db(), village=org.get_village(db(), code))


@blp.route("/public/<code>/honours/<int:list_id>")
class PublicList(ApiView):
    @blp.response(200, PublicHonourListSchema)
    @blp.alt_response(404, description="找不到")
    def get(self, code, list_id):
        """A list as published (a withdrawn one shows only its notice)."""
        village = org.get_village(db(), code)
        return honours.public_view(honours.get_public_list(db(), village=village, list_id=list_id))


@blp.route("/public/<code>/honours/records/<ref>")
class PublicRecord(ApiView):
    @blp.response(200, HouseholdHonourSchema(many=True))
    @blp.alt_response(404, description="找不到")
    def get(self, code, ref):
        """A household's published honours, by the reference its door plaque's QR carries."""
        return honours.public_record(db(), village=org.get_village(db(), code), ref=ref[:24])
