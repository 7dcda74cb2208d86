"""Ledger reads: schemes, balances and scores, statements, the chain head, town aggregates."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.db import db
from api.ledger.schemas import (
    BalanceSchema,
    HeadSchema,
    MonthQuerySchema,
    SchemeSchema,
    StatementQuerySchema,
    StatementSchema,
    TownSummarySchema,
)
from api.rest import ApiView, documented_errors, village_for
from api.web.identity import current_actor
from points import ledger, org
from points.db import utcnow
from points.errors import PermissionDeniedError
from points.ledger import statements
from points.models.org import Role
from points.periods import local_date, month_key

blp = Blueprint("ledger", __name__, url_prefix="/api/v1", description="积分账本")

STAFF = (Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK)


def _doc(*codes):
    return documented_errors(blp, *codes)


def _household(code, household_id):
    village = village_for(code, *STAFF, Role.RESIDENT)
    home = org.get_household(db(), village=village, household_id=household_id)
    current_actor().require_household(village, home)
    return village, home


@blp.route("/villages/<code>/schemes")
class Schemes(ApiView):
    @blp.response(200, SchemeSchema(many=True))
    @_doc()
    def get(self, code):
        """List the village's scoring schemes."""
        village = village_for(code, *STAFF, Role.RESIDENT, Role.SUPERVISOR)
        return statements.list_schemes(db(), village=village)


@blp.route("/villages/<code>/households/<int:household_id>/balance")
class HouseholdBalance(ApiView):
    @blp.arguments(StatementQuerySchema, location="query")
    @blp.response(200, BalanceSchema)
    @_doc(401, 403, 404, 422)
    def get(self, args, code, household_id):
        """A household's points: what it can spend, what it owes, and its period score."""
        village, home = _household(code, household_id)
        scheme = statements.get_scheme(db(), village=village, code=args["scheme"])
        _household_scheme(scheme)
        return statements.balance_view(
            db(), scheme=scheme, subject_id=home.id, now=utcnow(), period=args.get("period")
        )


@blp.route("/villages/<code>/households/<int:household_id>/statement")
class HouseholdStatement(ApiView):
    @blp.arguments(StatementQuerySchema, location="query")
    @blp.response(200, StatementSchema)
    @_doc(401, 403, 404, 422)
    def get(self, args, code, household_id):
        """A household's statement: every entry with its reason, newest first, and the head
        (not for clerks: the counter reads the balance and the household's redemptions)."""
        village, home = _household(code, household_id)
        current_actor().require_statement_reader(village, home)
        scheme = statements.get_scheme(db(), village=village, code=args["scheme"])
        _household_scheme(scheme)
        seq, head = ledger.chain_head(db(), village.id)
        return {
            "household_id": home.id,
            "resident_id": None,
            "scheme": scheme.code,
            "balance": statements.balance_view(
                db(), scheme=scheme, subject_id=home.id, now=utcnow()
            ),
            "entries": statements.subject_lines(
                db(),
                scheme=scheme,
                subject_id=home.id,
                period=args.get("period"),
                limit=args["limit"],
            ),
            "head_seq": seq,
            "head_hash": head,
        }


def _household_scheme(scheme):
    if scheme.subject_kind != "household":
        from points.errors import ValidationError

        raise ValidationError("该积分方案按个人记分，请查询村民的积分")


@blp.route("/villages/<code>/ledger/head")
class Head(ApiView):
    @blp.response(200, HeadSchema)
    @_doc()
    def get(self, code):
        """The ledger head (seq and hash) to compare with a printed board or statement."""
        village = village_for(code, *STAFF, Role.RESIDENT, Role.SUPERVISOR)
        seq, hash_ = ledger.chain_head(db(), village.id)
        return {"seq": seq, "hash": hash_}


@blp.route("/towns/<town>/summary")
class TownSummary(ApiView):
    @blp.arguments(MonthQuerySchema, location="query")
    @blp.response(200, TownSummarySchema)
    @_doc(401, 403, 422)
    def get(self, args, town):
        """Each village of my town: participation and totals for a month (no personal data)."""
        if town not in current_actor().towns():
            raise PermissionDeniedError("只有本镇督导员可以查看全镇汇总")
        month = args.get("month") or month_key(local_date(utcnow()))
        return {
            "town": town,
            "month": month,
            "villages": statements.town_summary(db(), town=town, month=month),
        }
