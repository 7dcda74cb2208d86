"""The catalog (积分标准) through the API: versions, Excel/YAML export and import (a draft),
the diff against the adopted version, adoption, and the dry run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import marshmallow as ma
from flask import after_this_request, send_file
from flask_smorest import Blueprint
from marshmallow import fields as f
from marshmallow import validate as v

from api.catalog.files import catalog_file, read_catalog, write_catalog
from api.db import db
from api.rest import ApiView, FileUploadSchema, In, audit, documented_errors, village_for
from api.web.identity import current_actor
from points import catalog
from points.catalog.dryrun import ledger_dry_run
from points.db import utcnow
from points.errors import NotFoundError, ValidationError
from points.ledger import statements
from points.models.org import Role

blp = Blueprint("catalog", __name__, url_prefix="/api/v1", description="积分标准")
STAFF = (Role.ADMIN, Role.REVIEWER, Role.RECORDER, Role.CLERK)
FORMATS = {"xlsx": ".xlsx", "yaml": ".yaml", "json": ".json"}


class VersionSchema(ma.Schema):
    number = f.Integer(required=True)
    status = f.String(required=True)
    title = f.String(required=True)
    adopted_on = f.Date(allow_none=True)
    adopted_by_body = f.String(allow_none=True)
    effective_from = f.Date(allow_none=True)
    effective_to = f.Date(allow_none=True)
    rules = f.Function(lambda version: len(version.rules), required=True)
    # The version's categories in order: [{name, description, black}] (black: 扣分上黑榜).
    categories = f.Function(lambda version: version.category_rows, required=True)


class ExportArgs(In):
    format = f.String(load_default="xlsx", validate=v.OneOf(list(FORMATS)))
    version = f.Integer(validate=v.Range(1, 100000))


class VersionArgs(In):
    version = f.Integer(validate=v.Range(1, 100000))
    months = f.Integer(load_default=3, validate=v.Range(1, 36))


class DiffSchema(ma.Schema):
    base = f.Integer(allow_none=True)
    version = f.Integer(required=True)
    summary = f.String(required=True)
    lines = f.List(f.String(), required=True)


class ImportResultSchema(DiffSchema):
    created = f.Boolean(required=True)


class AdoptInSchema(In):
    body = f.String(required=True, validate=v.Length(1, 100))
    adopted_on = f.Date(required=True)
    effective_from = f.Date(allow_none=True)
    note = f.String(load_default="", validate=v.Length(0, 1000))


class DryRunRowSchema(ma.Schema):
    subject = f.String(required=True)
    old_score = f.Integer(required=True)
    new_score = f.Integer(required=True)
    change = f.Integer(required=True)
    old_rank = f.Integer(required=True)
    new_rank = f.Integer(required=True)


class DryRunSchema(ma.Schema):
    version = f.Integer(required=True)
    months = f.Integer(required=True)
    acts = f.Integer(required=True)
    changed_acts = f.Integer(required=True)
    rows = f.List(f.Nested(DryRunRowSchema), required=True)


def _doc(*codes):
    return documented_errors(blp, *codes)


def _scheme(code, scheme_code, *roles):
    village = village_for(code, *roles)
    return village, statements.get_scheme(db(), village=village, code=scheme_code)


def _version(scheme, number):
    if number is not None:
        return catalog.get_version(db(), scheme=scheme, number=number)
    version = catalog.latest_draft(db(), scheme=scheme) or catalog.adopted_version(
        db(), scheme=scheme
    )
    if version is None:
        raise NotFoundError(f"{scheme.name}还没有积分标准")
    return version


def _diff(scheme, version):
    base = catalog.adopted_version(db(), scheme=scheme)
    base = None if base is not None and base.id == version.id else base
    diff = catalog.diff_versions(base, version)
    return {
        "base": base.number if base else None,
        "version": version.number,
        "summary": diff.summary(),
        "lines": diff.lines(),
    }


@blp.route("/villages/<code>/schemes/<scheme_code>/catalog")
class Versions(ApiView):
    @blp.response(200, VersionSchema(many=True))
    @_doc()
    def get(self, code, scheme_code):
        """List the scheme's catalog versions (drafts, adopted, retired)."""
        _, scheme = _scheme(code, scheme_code, *STAFF)
        return catalog.list_versions(db(), scheme=scheme)

    @blp.arguments(FileUploadSchema, location="files")
    @blp.response(201, ImportResultSchema)
    @_doc(401, 403, 404, 409, 413, 422)
    def post(self, files, code, scheme_code):
        """Import an edited sheet (.xlsx, .yaml or .json) as the draft; all problems at once."""
        village, scheme = _scheme(code, scheme_code, Role.ADMIN)
        upload = files["file"]
        suffix = Path(upload.filename or "").suffix.lower()
        if suffix not in (".xlsx", ".yaml", ".yml", ".json"):
            raise ValidationError(
                "只支持 .xlsx、.yaml 或 .json 文件", errors={"file": ["类型不对"]}
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"catalog{suffix}"
            path.write_bytes(upload.stream.read())
            data = read_catalog(path)
        draft, created = catalog.save_draft(
            db(),
            scheme=scheme,
            rules=data.rules,
            categories=data.categories,
            title=data.title or "",
            actor_id=current_actor().user_id,
            now=utcnow(),
        )
        audit(
            village,
            "catalog.import",
            draft,
            f"导入{scheme.name}第 {draft.number} 版草案",
            "catalog_version",
        )
        return {**_diff(scheme, draft), "created": created}


@blp.route("/villages/<code>/schemes/<scheme_code>/catalog/export")
class Export(ApiView):
    @blp.arguments(ExportArgs, location="query")
    @blp.response(200, description="the catalog file")
    @_doc(401, 403, 404, 422)
    def get(self, args, code, scheme_code):
        """Download a version (default: the draft, else the adopted one) as a file."""
        village, scheme = _scheme(code, scheme_code, *STAFF)
        version = _version(scheme, args.get("version"))
        handle, name = tempfile.mkstemp(suffix=FORMATS[args["format"]])
        os.close(handle)
        write_catalog(name, catalog_file(version, village=village, scheme=scheme))

        @after_this_request
        def _cleanup(response):
            Path(name).unlink(missing_ok=True)
            return response

        download = f"{village.code}-{scheme.code}-v{version.number}{FORMATS[args['format']]}"
        return send_file(name, as_attachment=True, download_name=download)


@blp.route("/villages/<code>/schemes/<scheme_code>/catalog/diff")
class Diff(ApiView):
    @blp.arguments(VersionArgs, location="query")
    @blp.response(200, DiffSchema)
    @_doc(401, 403, 404, 422)
    def get(self, args, code, scheme_code):
        """What a version (default: the draft) changes against the adopted catalog."""
        _, scheme = _scheme(code, scheme_code, *STAFF)
        return _diff(scheme, _version(scheme, args.get("version")))


@blp.route("/villages/<code>/schemes/<scheme_code>/catalog/<int:number>/adopt")
class Adopt(ApiView):
    @blp.arguments(AdoptInSchema)
    @blp.response(200, VersionSchema)
    @_doc(401, 403, 404, 409, 422)
    def post(self, data, code, scheme_code, number):
        """Record the meeting's vote: the draft becomes the catalog in force."""
        village, scheme = _scheme(code, scheme_code, Role.ADMIN)
        version = catalog.get_version(db(), scheme=scheme, number=number)
        catalog.adopt(
            db(),
            version=version,
            body=data["body"],
            adopted_on=data["adopted_on"],
            note=data["note"],
            effective_from=data.get("effective_from"),
            actor_id=current_actor().user_id,
            now=utcnow(),
        )
        audit(
            village,
            "catalog.adopt",
            version,
            f"{data['body']}通过{scheme.name}第 {version.number} 版",
            "catalog_version",
        )
        return version


@blp.route("/villages/<code>/schemes/<scheme_code>/catalog/dryrun")
class DryRun(ApiView):
    @blp.arguments(VersionArgs, location="query")
    @blp.response(200, DryRunSchema)
    @_doc(401, 403, 404, 422)
    def get(self, args, code, scheme_code):
        """How each score and rank would change had the version applied for the last months."""
        _, scheme = _scheme(code, scheme_code, Role.ADMIN, Role.REVIEWER)
        version = _version(scheme, args.get("version"))
        result, labels = ledger_dry_run(db(), version=version, months=args["months"], now=utcnow())
        rows = [
            {
                "subject": labels.get(r.subject_id, str(r.subject_id)),
                "old_score": r.old_score,
                "new_score": r.new_score,
                "change": r.change,
                "old_rank": r.old_rank,
                "new_rank": r.new_rank,
            }
            for r in result.changed_rows
        ]
        return {
            "version": version.number,
            "months": args["months"],
            "acts": result.acts,
            "changed_acts": result.changed_acts,
            "rows": rows,
        }
