"""Recording without signal: the record page's web app manifest and service worker, and the
endpoint its queue (IndexedDB on the phone) syncs through, one record at a time, each with the
Idempotency-Key the phone made when the record was entered. See
docs/decisions/0016-offline-recording.md."""

from __future__ import annotations

import json

import marshmallow as ma
from flask import Blueprint, current_app, jsonify, request, send_from_directory, url_for
from werkzeug.exceptions import Unauthorized

from api.claims.evidence import attach_photos
from api.claims.schemas import ClaimInSchema, ClaimSchema
from api.db import db
from api.rest import audit_note, json_endpoint
from api.web.helpers import page_village
from api.web.identity import current_actor, current_user_id
from points import claims
from points.db import utcnow
from points.errors import ValidationError
from points.ledger import statements
from points.models.org import Role
from points.org import get_village
from points.org.operations import VillageRow

bp = Blueprint("claim_offline", __name__)

MAX_PHOTOS = 3


def record_one(village, data: dict, photos: list):
    """Record one act with its photos (API and offline queue alike); when the record says what
    it was made against (rule, grid), refuse it if that changed since."""
    if len(photos) > MAX_PHOTOS:
        raise ValidationError(f"最多上传 {MAX_PHOTOS} 张照片", errors={"photos": ["太多"]})
    if isinstance(village, VillageRow):  # the API's record: the village read as plain values
        scheme = village.scheme(data.pop("scheme"))
    else:
        scheme = statements.get_scheme(db(), village=village, code=data.pop("scheme"))
    rule_id, group_id = data.pop("expected_rule_id", None), data.pop("expected_group_id", None)
    if rule_id is not None:
        claims.check_unchanged(
            db(),
            village=village,
            scheme=scheme,
            household_id=data["household_id"],
            resident_id=data.get("resident_id"),
            rule_code=data["rule_code"],
            occurred_on=data["occurred_on"],
            made_against=claims.MadeAgainst(rule_id=rule_id, group_id=group_id),
        )
    claim = claims.record(
        db(),
        village=village,
        scheme=scheme,
        actor=current_actor(),
        item=claims.ClaimInput(has_evidence=bool(photos), **data),
        now=utcnow(),
        attach=bool(photos),  # otherwise the claim is only read (the answer)
        audit=audit_note(
            village,
            "claim.record",
            "claim",
            lambda claim: (
                f"登记 {claim.points:+d} 分（户 #{claim.household_id}），附照片 {len(photos)} 张"
            ),
        ),
    )
    attach_photos(db(), claim, photos)  # appended to claim.evidence: no reload needed
    return claim


@bp.post("/v/<code>/record/queued")
@json_endpoint
def queued(code):
    """Record one item of the phone's offline queue (page session and CSRF header; JSON out)."""
    if current_user_id() is None:
        raise Unauthorized()
    village = page_village(code, Role.ADMIN, Role.RECORDER)
    try:
        raw = json.loads(request.form.get("data") or "")
    except ValueError as exc:
        raise ValidationError(
            "data 字段应为 JSON 文本", errors={"data": ["不是正确的 JSON"]}
        ) from exc
    try:
        data = ClaimInSchema().load(raw)
    except ma.ValidationError as exc:
        raise ValidationError("输入有误，请检查标出的字段", errors=exc.messages) from exc
    photos = [p for p in request.files.getlist("photos") if p and p.filename]
    claim = record_one(village, data, photos)
    return jsonify(ClaimSchema().dump(claim)), 201


@bp.get("/v/<code>/manifest.webmanifest")
def manifest(code):
    """The record page as an app on the phone's home screen (opens to 登记, works offline)."""
    get_village(db(), code)  # an unknown village is a 404, not an app
    body = {
        "name": "村级积分 · 登记",
        "short_name": "积分登记",
        "lang": "zh-CN",
        "start_url": url_for("claim_pages.record", code=code),
        "scope": f"/v/{code}/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#b71c1c",
        "icons": [
            {
                "src": url_for("static", filename="favicon.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
            }
        ],
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
def service_worker():
    """The service worker, from the site's root so that its scope can cover every village."""
    response = send_from_directory(current_app.static_folder, "sw.js", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
