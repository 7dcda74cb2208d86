"""Claims: record (one or an event batch), declare with photos, review, 公示, objections, post,
correct; the public notice list; the anomaly report."""

from __future__ import annotations

import json
from functools import cache

import marshmallow as ma
from flask import request, send_file
from flask_smorest import Blueprint
from marshmallow import missing
from webargs.flaskparser import FlaskParser

from api.claims.evidence import attach_photos, attach_stored, photo_path, store_uploads
from api.claims.offline import record_one
from api.claims.schemas import (
    AnomalySchema,
    BatchInSchema,
    BatchResultSchema,
    ClaimInSchema,
    ClaimQuerySchema,
    ClaimSchema,
    DeclarationFilesSchema,
    DeclarationFormSchema,
    GroupAwardInSchema,
    MonthArgsSchema,
    NoticeSchema,
    ObjectionInSchema,
    ObjectionSchema,
    RejectInSchema,
    ResolveInSchema,
    ReverseInSchema,
    ReviewInSchema,
)
from api.db import db, reads_first
from api.lean import lean_operation
from api.rest import ApiView, audit, documented_errors, village_for, village_row_for
from api.web.identity import current_actor
from points import claims, org
from points.claims import notices
from points.claims.anomalies import anomaly_report
from points.db import utcnow
from points.errors import NotFoundError, ValidationError
from points.ledger import statements
from points.models.claims import Channel, Objection
from points.models.org import Role
from points.periods import local_date, month_key


class JsonOrMultipartParser(FlaskParser):
    """JSON bodies as usual; a multipart body carries the same JSON document in its `data` field
    next to the `photos` files, so one endpoint takes a claim with or without its evidence."""

    def _get_schema(self, argmap, req):
        # One instance per schema class, not one per request: webargs would build one each
        # time, deep-copying its fields (a sixth of a recording's Python time). Loading leaves
        # a marshmallow 4 schema unchanged, so the server's threads can share the instance.
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            return _schema_instance(argmap)
        return super()._get_schema(argmap, req)

    def load_json(self, req, schema):
        if req.mimetype != "multipart/form-data":
            return super().load_json(req, schema)
        raw = req.form.get("data")
        if raw is None:
            return missing
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ValidationError(
                "data 字段应为 JSON 文本", errors={"data": ["不是正确的 JSON"]}
            ) from exc


@cache
def _schema_instance(schema_class: type[ma.Schema]) -> ma.Schema:
    return schema_class()


blp = Blueprint("claims", __name__, url_prefix="/api/v1", description="积分事项、审核与公示")
blp.ARGUMENTS_PARSER = JsonOrMultipartParser()

STAFF = (Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK)
RECORDERS = (Role.ADMIN, Role.RECORDER)
REVIEWERS = (Role.ADMIN, Role.REVIEWER)
MAX_PHOTOS = 3


def _doc(*codes):
    return documented_errors(blp, *codes)


def _photos(field: str = "photos") -> list:
    """The uploaded photos of a multipart request (none for JSON), at most MAX_PHOTOS."""
    if request.mimetype != "multipart/form-data":
        return []  # a JSON body carries no files (and parsing for them costs a form parser)
    photos = [p for p in request.files.getlist(field) if p and p.filename]
    if len(photos) > MAX_PHOTOS:
        raise ValidationError(f"最多上传 {MAX_PHOTOS} 张照片", errors={"photos": ["太多"]})
    return photos


def _claim(code, claim_id, *roles):
    village = village_for(code, *roles)
    claim = claims.get_claim(db(), village=village, claim_id=claim_id)
    household = org.get_household(db(), village=village, household_id=claim.household_id)
    current_actor().require_household(village, household)
    return village, claim


@blp.route("/villages/<code>/claims")
class Claims(ApiView):
    @blp.arguments(ClaimQuerySchema, location="query")
    @blp.response(200, ClaimSchema(many=True))
    @_doc(401, 403, 404, 422)
    def get(self, args, code):
        """List claims of the households I may see, newest first."""
        village = village_for(code, *STAFF, Role.RESIDENT)
        return claims.list_claims(db(), village=village, actor=current_actor(), **args)

    @reads_first
    @lean_operation(blp, ClaimInSchema, 201, ClaimSchema, 401, 403, 404, 409, 422)
    def post(self, data, code):
        """Record one act for a household (grid workers: their own group only).

        Send JSON, or multipart/form-data with this JSON in a `data` field and up to three
        JPG/PNG `photos` (required by rules marked evidence_required). A record made offline
        names the rule and grid it was made against (`expected_rule_id`, `expected_group_id`):
        409 `rule_changed`, `household_moved`, `household_gone` or `member_gone` if they changed."""
        village = village_row_for(code, *RECORDERS)
        return record_one(village, data, _photos())


@blp.route("/villages/<code>/claims/batch")
class ClaimBatch(ApiView):
    @reads_first
    @lean_operation(blp, BatchInSchema, 201, BatchResultSchema, 401, 403, 404, 409, 422)
    def post(self, data, code):
        """Record one rule for many people at once (an event: clean-up, patrol, meeting).

        Send JSON, or multipart/form-data with this JSON in a `data` field and up to three
        `photos` (a 签到表, the event): they are attached to every claim of the batch."""
        village = village_row_for(code, *RECORDERS)
        photos = _photos()
        scheme = village.scheme(data.pop("scheme"))
        subjects = [(s["household_id"], s.get("resident_id")) for s in data.pop("subjects")]
        batch, items = claims.record_batch(
            db(),
            village=village,
            scheme=scheme,
            actor=current_actor(),
            subjects=subjects,
            now=utcnow(),
            has_evidence=bool(photos),
            attach=bool(photos),  # otherwise the claims are only read (the answer)
            **data,
        )
        stored = store_uploads(village.id, photos)
        for item in items:
            attach_stored(db(), item, stored, share=True)
        audit(
            village, "claim.batch", batch, f"批量登记“{batch.title}” {len(items)} 人", "claim_batch"
        )
        return {"batch_id": batch.id, "claims": items}


@blp.route("/villages/<code>/claims/group")
class ClaimGroup(ApiView):
    @blp.arguments(GroupAwardInSchema)
    @blp.response(201, BatchResultSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code):
        """Record one award for a group or event: each member household gets it, with one
        notice row and one review (小组被评为卫生示范组)."""
        village = village_for(code, *RECORDERS)
        scheme = statements.get_scheme(db(), village=village, code=data.pop("scheme"))
        group_id = data.pop("group_id", None)
        households = data.pop("household_ids", None) or claims.group_households(
            db(), village=village, group_id=group_id
        )
        batch, items = claims.record_group(
            db(),
            village=village,
            scheme=scheme,
            actor=current_actor(),
            household_ids=households,
            now=utcnow(),
            **data,
        )
        audit(
            village, "claim.group", batch, f"集体奖励“{batch.title}” {len(items)} 户", "claim_batch"
        )
        return {"batch_id": batch.id, "claims": items}


@blp.route("/villages/<code>/declarations")
class Declarations(ApiView):
    @blp.arguments(DeclarationFormSchema, location="form")
    @blp.arguments(DeclarationFilesSchema, location="files")
    @blp.response(201, ClaimSchema)
    @_doc(401, 403, 404, 409, 413, 422)
    def post(self, form, files, code):
        """Declare a good deed of my household with up to three photos (JPG/PNG)."""
        village = village_for(code, Role.RESIDENT)
        actor = current_actor()
        photos = files.get("photos") or []
        if len(photos) > MAX_PHOTOS:
            raise ValidationError(f"最多上传 {MAX_PHOTOS} 张照片", errors={"photos": ["太多"]})
        scheme = statements.get_scheme(db(), village=village, code=form.pop("scheme"))
        claim = claims.record(
            db(),
            village=village,
            scheme=scheme,
            actor=actor,
            now=utcnow(),
            channel=Channel.DECLARED,
            item=claims.ClaimInput(
                household_id=actor.household_id, has_evidence=bool(photos), **form
            ),
        )
        attach_photos(db(), claim, photos)
        db().flush()
        db().refresh(claim)
        audit(
            village,
            "claim.declare",
            claim,
            f"村民申报 {claim.points:+d} 分，附照片 {len(photos)} 张",
        )
        return claim


@blp.route("/villages/<code>/claims/<int:claim_id>")
class ClaimItem(ApiView):
    @blp.response(200, ClaimSchema)
    @_doc()
    def get(self, code, claim_id):
        """Show a claim with its evidence and objections."""
        return _claim(code, claim_id, *STAFF, Role.RESIDENT)[1]


@blp.route("/villages/<code>/claims/<int:claim_id>/evidence/<int:evidence_id>")
class ClaimEvidence(ApiView):
    @blp.response(200, description="the photo (image/jpeg or image/png)")
    @_doc()
    def get(self, code, claim_id, evidence_id):
        """Download a claim's photo (only for people allowed to see the claim)."""
        village, claim = _claim(code, claim_id, *STAFF, Role.RESIDENT)
        item = next((e for e in claim.evidence if e.id == evidence_id), None)
        if item is None:
            raise NotFoundError("找不到该照片")
        suffix = ".png" if item.content_type == "image/png" else ".jpg"
        # A named inline file, never sniffed: a browser shows the photo and nothing else.
        response = send_file(
            photo_path(village.id, item.stored_name),
            mimetype=item.content_type,
            download_name=f"claim-{claim.id}-photo-{item.id}{suffix}",
            as_attachment=False,
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, max-age=0"
        return response


def _review(code, claim_id, action, summary, fn, **kwargs):
    village, claim = _claim(code, claim_id, *REVIEWERS)
    result = fn(db(), claim=claim, actor=current_actor(), now=utcnow(), **kwargs)
    audit(village, action, claim, summary.format(claim=claim))
    return result


@blp.route("/villages/<code>/claims/<int:claim_id>/approve")
class ClaimApprove(ApiView):
    @blp.arguments(ReviewInSchema)
    @blp.response(200, ClaimSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, claim_id):
        """Approve a claim; it enters public notice (公示)."""
        return _review(
            code,
            claim_id,
            "claim.approve",
            "审核通过，进入公示（事项 #{claim.id}）",
            claims.approve,
            note=data.get("note"),
        )


@blp.route("/villages/<code>/claims/<int:claim_id>/reject")
class ClaimReject(ApiView):
    @blp.arguments(RejectInSchema)
    @blp.response(200, ClaimSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, claim_id):
        """Reject a claim in review, with a reason."""
        return _review(
            code,
            claim_id,
            "claim.reject",
            "驳回事项 #{claim.id}",
            claims.reject,
            reason=data["reason"],
        )


@blp.route("/villages/<code>/claims/<int:claim_id>/objections")
class ClaimObjections(ApiView):
    @blp.arguments(ObjectionInSchema)
    @blp.response(201, ObjectionSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, claim_id):
        """Object to a claim on public notice (anyone of the village, within the window)."""
        village = village_for(code, *STAFF, Role.RESIDENT)
        claim = claims.get_claim(db(), village=village, claim_id=claim_id)
        objection = claims.object_to(
            db(), claim=claim, actor=current_actor(), reason=data["reason"], now=utcnow()
        )
        audit(village, "objection.raise", objection, f"对事项 #{claim.id} 提出异议")
        return objection


@blp.route("/villages/<code>/objections/<int:objection_id>/resolve")
class ObjectionResolve(ApiView):
    @blp.arguments(ResolveInSchema)
    @blp.response(200, ObjectionSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, objection_id):
        """Resolve an objection: upheld rejects the claim, dismissed lets it continue."""
        village = village_for(code, *REVIEWERS)
        objection = db().get(Objection, objection_id)
        if objection is None or objection.village_id != village.id:
            raise NotFoundError("找不到该异议")
        result = claims.resolve_objection(
            db(),
            objection=objection,
            actor=current_actor(),
            uphold=data["uphold"],
            note=data["note"],
            now=utcnow(),
        )
        audit(
            village,
            "objection.resolve",
            objection,
            f"异议{'成立' if data['uphold'] else '不成立'}（事项 #{objection.claim_id}）",
        )
        return result


@blp.route("/villages/<code>/claims/<int:claim_id>/post")
class ClaimPost(ApiView):
    @blp.response(200, ClaimSchema)
    @_doc(401, 403, 404, 409)
    def post(self, code, claim_id):
        """Post a claim whose notice ended with no open objection (the scheduler does it too)."""
        village, claim = _claim(code, claim_id, Role.ADMIN)
        result = claims.post_claim(
            db(), claim_id=claim.id, now=utcnow(), actor_id=current_actor().user_id
        )
        audit(village, "claim.post", claim, f"事项 #{claim.id} 入账")
        return result


@blp.route("/villages/<code>/claims/<int:claim_id>/reverse")
class ClaimReverse(ApiView):
    @blp.arguments(ReverseInSchema)
    @blp.response(200, ClaimSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, claim_id):
        """Correct a posted claim with a visible reversal (shown on statements and notices)."""
        village, claim = _claim(code, claim_id, Role.ADMIN)
        entry = claims.reverse_claim(
            db(), claim=claim, actor=current_actor(), reason=data["reason"], now=utcnow()
        )
        audit(
            village,
            "claim.reverse",
            claim,
            f"冲正事项 #{claim.id}：{data['reason']}",
            entry_id=entry.id,
        )
        return claim


@blp.route("/villages/<code>/anomalies")
class Anomalies(ApiView):
    @blp.arguments(MonthArgsSchema, location="query")
    @blp.response(200, AnomalySchema)
    @_doc(401, 403, 404, 422)
    def get(self, args, code):
        """The month's anomaly report: concentration, recorder–approver pairs, bursts."""
        village = village_for(code, *REVIEWERS)
        month = args.get("month") or month_key(local_date(utcnow()))
        return anomaly_report(db(), village=village, month=month)


@blp.route("/public/<code>/notices")
class PublicNotices(ApiView):
    @blp.response(200, NoticeSchema(many=True))
    @blp.alt_response(404, description="找不到")
    def get(self, code):
        """Open public notices and recent corrections of a village (no sign-in needed)."""
        village = org.get_village(db(), code)
        return notices.public_notices(db(), village=village, now=utcnow())
