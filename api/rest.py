"""The REST API under /api/v1: one error envelope, idempotent writes, village-scoped views."""

from __future__ import annotations

import hashlib
import json
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, current_app, g, jsonify, request, send_from_directory
from flask.views import MethodView
from flask_smorest import Api
from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError

from api.db import db, end_read_phase
from api.web.helpers import MONTH_PATTERN
from points import errors
from points.db import lock_name, utcnow
from points.models import IdempotencyRecord

PREFIX = "/api/v1"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Domain error classes -> HTTP statuses; the most specific class listed wins.
STATUS = {
    errors.AccountLockedError: 429,
    errors.AuthenticationError: 401,
    errors.PermissionDeniedError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.ValidationError: 422,
    errors.PointsError: 400,
}
HTTP_MESSAGES = {
    400: ("bad_request", "请求格式不正确"),
    401: ("unauthenticated", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "找不到该页面或记录"),
    405: ("method_not_allowed", "不支持该请求方式"),
    409: ("conflict", "与现有数据冲突"),
    413: ("too_large", "提交的内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    422: ("invalid_input", "输入有误，请检查标出的字段"),
    429: ("too_many_requests", "尝试次数过多，请稍后再试"),
    500: ("server_error", "系统出错，请稍后重试；已记录"),
    503: ("unavailable", "系统繁忙，请稍后重试"),
}


class ErrorSchema(ma.Schema):
    """The one error envelope of the API."""

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status name"})
    error = ma.fields.String(required=True, metadata={"description": "stable machine code"})
    message = ma.fields.String(required=True, metadata={"description": "Chinese message"})
    errors = ma.fields.Dict(metadata={"description": "per-field messages"})


class PointsApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        """Render any HTTP error raised under /api as the envelope (pages get the Chinese page)."""
        if not speaks_json():
            from api.web.helpers import render_http_error

            return render_http_error(error)
        data = getattr(error, "data", None) or {}
        machine, message = HTTP_MESSAGES.get(error.code, ("http_error", error.name))
        field_errors = data.get("errors") or data.get("messages")
        if error.code == 422 and field_errors:
            field_errors = _flatten_webargs(field_errors)
        return envelope(
            error.code,
            machine,
            data.get("message") or message,
            field_errors,
            headers=data.get("headers"),
        )


api = PointsApi()


def json_endpoint(view):
    """Mark a page view (session cookie and CSRF, not a bearer token) that answers JSON like the
    API: its errors are the envelope and it honours Idempotency-Key. The offline record page's
    queue syncs through one, since the API itself never accepts the page's cookie."""
    view.json_endpoint = True
    return view


def speaks_json() -> bool:
    """Return True when this request is answered as the API answers (envelope errors)."""
    if request.path.startswith(PREFIX):
        return True
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return bool(getattr(view, "json_endpoint", False))


def envelope(status: int, code: str, message: str, field_errors=None, headers=None):
    """Return the JSON error response every API failure uses."""
    body = {"code": status, "status": HTTPStatus(status).phrase, "error": code, "message": message}
    if field_errors:
        body["errors"] = field_errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs(messages: dict) -> dict:
    """webargs nests errors by location ({'json': {'field': [...]}}): keep the field level."""
    flat = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            for name, msgs in fields.items():
                # A multipart field with an unreadable name (e.g. a bare CR) arrives as None:
                # report it under a string key, or the JSON envelope cannot be built (a 500).
                key = name if isinstance(name, str) else "_field"
                flat[key] = [_chinese(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        else:
            flat[location] = fields
    return flat


_MA_MESSAGES = {
    "Unknown field.": "不允许的字段",
    "Missing data for required field.": "必填",
    "Not a valid integer.": "应为整数",
    "Not a valid string.": "应为文字",
    "Not a valid boolean.": "应为是/否",
    "Not a valid date.": "日期格式应为 YYYY-MM-DD",
    "Field may not be null.": "不能为空",
    "Invalid input type.": "类型不正确",
}


def _chinese(message):
    if isinstance(message, str):
        for english, chinese in _MA_MESSAGES.items():
            if message.startswith(english):
                return chinese
        if message.startswith("Must be one of"):
            return "取值不在允许范围内：" + message.split(":", 1)[-1].strip().rstrip(".")
        if message.startswith("Length must be"):
            return "长度不符合要求"
        if message.startswith("Must be greater") or message.startswith("Must be less"):
            return "数值超出允许范围"
    return message


def init_app(app: Flask) -> None:
    """Configure flask-smorest, the error and idempotency hooks; features register their own
    blueprints on `api` (see each feature's `init_app`)."""
    app.config.setdefault("API_TITLE", "村级积分管理 API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    # Swagger UI's files come from the swagger-ui-bundle package, served by us: no CDN.
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", f"{PREFIX}/docs-assets/")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    api.init_app(app)

    @app.get(f"{PREFIX}/docs-assets/<path:filename>")
    def swagger_assets(filename):
        from swagger_ui_bundle import swagger_ui_path

        return send_from_directory(swagger_ui_path, filename, max_age=86400)

    app.register_error_handler(errors.PointsError, _handle_points_error)
    app.register_error_handler(IntegrityError, _handle_integrity_error)
    app.register_error_handler(OperationalError, _handle_operational_error)
    app.register_error_handler(InterfaceError, _handle_operational_error)
    app.register_error_handler(DataError, _handle_data_error)
    app.register_error_handler(PoolTimeoutError, _handle_operational_error)
    app.register_error_handler(500, _handle_server_error)
    app.before_request(_replay_idempotent)
    app.after_request(_store_idempotent)


def _handle_points_error(error: errors.PointsError):
    status = next(s for cls, s in STATUS.items() if isinstance(error, cls))
    _rollback()
    audit_refusal(error)
    if not speaks_json():
        from api.web.helpers import render_error

        return render_error(status, error.message)
    headers = None
    if isinstance(error, errors.AccountLockedError):
        headers = {"Retry-After": str(error.minutes * 60)}
    return envelope(
        status, error.code, error.message, getattr(error, "errors", None), headers=headers
    )


def _handle_integrity_error(error: IntegrityError):
    # A unique key the domain did not foresee lost a race: report a conflict, never a 500.
    _rollback()
    return envelope(409, "conflict", "与现有数据冲突，请刷新后重试")


# What a database says while it restarts, fails over, is unreachable or is contended: the
# request can simply be retried. Anything else stays a 500 (a bug to fix, not to hide).
TRANSIENT_DB_ERRORS = (
    "deadlock",
    "could not serialize",
    "database is locked",
    "database table is locked",
    "server closed the connection",
    "terminating connection",
    "connection refused",
    "could not connect",
    "connection is closed",
    "connection timed out",
    "connection reset",
    "the connection is lost",
    "consuming input failed",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "cannot connect now",
    "ssl syscall error",
)


def is_transient_db_error(error: BaseException | None) -> bool:
    """Return True for a database error that a retry in a moment will likely get past, and
    for a connection pool that stayed exhausted (on SQLite the process's one writing
    connection, busy past `api.db.WRITER_WAIT` while a long close runs)."""
    if isinstance(error, PoolTimeoutError):
        return True
    if not isinstance(error, OperationalError | InterfaceError | DBAPIError):
        return False
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    text = str(error.orig if error.orig is not None else error).lower()
    return any(marker in text for marker in TRANSIENT_DB_ERRORS)


def busy_response():
    """Answer 503 `busy` with Retry-After: the envelope under /api, a Chinese page elsewhere."""
    message = "系统繁忙，请稍后重试"
    if speaks_json():
        return envelope(503, "busy", message, headers={"Retry-After": RETRY_AFTER})
    from api.web.helpers import render_error

    return render_error(503, message, {"Retry-After": RETRY_AFTER})


RETRY_AFTER = "2"


def _handle_operational_error(error: DBAPIError | PoolTimeoutError):
    _rollback()
    if is_transient_db_error(error):
        return busy_response()
    raise error


def _handle_data_error(error: DataError):
    # A value the column cannot hold (a number out of range) that no schema caught.
    _rollback()
    if speaks_json():
        return envelope(400, "bad_request", "输入的数值超出允许范围")
    from api.web.helpers import render_error

    return render_error(400, "输入的数值超出允许范围")


def _handle_server_error(error: InternalServerError):
    """The last net: a transient database error raised where no handler sees it (the commit
    after the view, a rollback on a dead connection) is still a 503, not a 500."""
    if is_transient_db_error(getattr(error, "original_exception", None)):
        return busy_response()
    if speaks_json():
        return envelope(500, *HTTP_MESSAGES[500])
    from api.web.helpers import render_error

    return render_error(500, HTTP_MESSAGES[500][1])


def _rollback() -> None:
    session = g.get("db_session")
    if session is not None:
        try:
            session.rollback()
        except DBAPIError:
            # The connection is already gone (a database restart): nothing to undo there.
            session.close()
            g.pop("db_session", None)


# --- Idempotency-Key on every write ---------------------------------------------------------


def _request_fingerprint() -> str:
    head = f"{request.method} {request.path}?{request.query_string.decode()}\n".encode()
    if request.mimetype == "multipart/form-data":
        return _multipart_fingerprint(head)
    body = request.get_data(cache=True) or b""
    return hashlib.sha256(head + body).hexdigest()


def _multipart_fingerprint(head: bytes) -> str:
    """Hash a multipart request's fields and files, not its bytes: a browser picks a new random
    boundary each time it sends a FormData, so a retry would otherwise never match its first
    send. The parsed request stays readable by the view (files are rewound)."""
    digest = hashlib.sha256(head)
    for name, value in sorted(request.form.items(multi=True)):
        digest.update(f"f {len(name)}:{name} {len(value)}:".encode() + value.encode())
    for name, upload in request.files.items(multi=True):
        data = upload.stream.read()
        upload.stream.seek(0)
        digest.update(f"p {len(name)}:{name} {len(data)}:".encode() + data)
    return digest.hexdigest()


def _replay_idempotent():
    """Answer a repeated write with the stored first response; refuse a reused key."""
    req = request._get_current_object()
    if req.method not in WRITE_METHODS:
        return None
    # The Idempotency-Key header, read as request.headers would, minus the KeyError raised and
    # caught when it is absent (most writes).
    key = req.environ.get("HTTP_IDEMPOTENCY_KEY")
    if not key or not speaks_json():
        return None
    if len(key) > 200:
        return envelope(400, "bad_request", "Idempotency-Key 不能超过 200 个字符")
    from api.web.identity import current_user_id

    user_id = current_user_id()
    if user_id is None:
        return None  # the view answers 401 itself
    # The lookup and the write must be one transaction (the lock below; on SQLite the write
    # lock), so a `reads_first` view's write transaction starts here.
    end_read_phase()
    g.idempotency = (user_id, key, _request_fingerprint())
    # Concurrent retries with one key queue here until the first commits its response, then
    # replay it; without the lock both would run the write (a spent QR code: 409 token_used).
    lock_name(db(), f"idempotency:{user_id}:{key}")
    return _lookup_replay(user_id, key, g.idempotency[2])


def _lookup_replay(user_id: int, key: str, fingerprint: str):
    record = (
        db()
        .execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
            )
        )
        .scalar_one_or_none()
    )
    if record is None:
        return None
    if record.request_hash != fingerprint:
        return envelope(
            409, errors.DuplicateRequestError.code, errors.DuplicateRequestError.message
        )
    response = jsonify(json.loads(record.response_body))
    response.status_code = record.status_code
    response.headers["Idempotent-Replay"] = "true"
    return response


def _store_idempotent(response):
    """Keep a successful write's response in the same transaction as the write."""
    pending = g.pop("idempotency", None)
    if pending is None or response.status_code >= 400 or response.headers.get("Idempotent-Replay"):
        return response
    user_id, key, fingerprint = pending
    session = db()
    try:
        with session.begin_nested():
            session.add(
                IdempotencyRecord(
                    user_id=user_id,
                    key=key,
                    request_hash=fingerprint,
                    status_code=response.status_code,
                    response_body=response.get_data(as_text=True) or "null",
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        # The same key committed concurrently: ours is undone, theirs is the answer.
        session.rollback()
        replay = _lookup_replay(user_id, key, fingerprint)
        return replay if replay is not None else envelope(409, "conflict", "请求正在处理中")
    return response


# --- base view ---------------------------------------------------------------------------------


MONTH = ma.validate.Regexp(MONTH_PATTERN, error="月份格式应为 YYYY-MM")
PERIOD = ma.validate.Regexp(
    r"^[12][0-9]{3}(-(Q[1-4]|0[1-9]|1[0-2]))?$", error="周期格式应为 YYYY、YYYY-MM 或 YYYY-Qn"
)
# Every integer column is 32-bit (points.db): a bigger number in a body or filter is refused
# here as a field error instead of overflowing in the database driver.
INT_RANGE = (-(2**31), 2**31 - 1)


class In(ma.Schema):
    """Base of every input schema: unknown fields are refused, integers fit a column."""

    class Meta:
        unknown = ma.RAISE

    @ma.validates_schema
    def _integers_fit(self, data, **_kw):
        bad = {name: ["数值超出允许范围"] for name, value in data.items() if _out_of_range(value)}
        if bad:
            raise ma.ValidationError(bad)


def _out_of_range(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not INT_RANGE[0] <= value <= INT_RANGE[1]
    if isinstance(value, dict):
        return any(_out_of_range(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_out_of_range(v) for v in value)
    return False


class FileUploadSchema(ma.Schema):
    """One uploaded file (multipart form field `file`)."""

    file = ma.fields.Raw(metadata={"type": "string", "format": "binary"}, required=True)


class ApiView(MethodView):
    """Base of every resource view (a hook for shared behaviour; views stay thin)."""


def client_ip() -> str | None:
    """Return the client's address as the audit log records it."""
    return request.remote_addr


def village_for(code: str, *roles: str):
    """Return the village `code` after checking the signed-in actor holds one of `roles` in it."""
    from api.web.identity import current_actor
    from points.org import get_village

    actor = current_actor()
    village = get_village(db(), code)
    actor.require(village, *roles)
    g.village = village
    end_read_phase()  # a `reads_first` view's write transaction starts here (SQLite)
    return village


def village_row_for(code: str, *roles: str):
    """`village_for` as plain values (`points.org.VillageRow`: the village's columns and its
    schemes), for a write view that only reads the village (recording): no ORM objects."""
    from api.web.identity import actor_and_village_row

    actor, village = actor_and_village_row(code)
    actor.require(village, *roles)
    g.village = village
    end_read_phase()  # a `reads_first` view's write transaction starts here (SQLite)
    return village


def audit(village, action: str, obj, summary: str, object_type: str | None = None, **details):
    """Record the current request's write in the audit log (same transaction as the write);
    its object is `obj` (its id, or `obj` itself when it has none)."""
    note = audit_note(
        village, action, object_type or type(obj).__name__.lower(), summary, **details
    )
    note.append(db(), obj)


def audit_note(village, action: str, object_type: str, summary, **details):
    """The current request's audit event, for a write still to be made (`points.audit.Note`;
    `summary` may be a function of the written object): the domain appends it with its row."""
    from api.web.identity import current_actor
    from points.audit import Note

    return Note(
        actor_id=current_actor().user_id,
        village_id=village.id if village else None,
        action=action,
        object_type=object_type,
        summary=summary,
        details=details or None,
        remote_addr=client_ip(),
        now=utcnow(),
    )


def audit_refusal(error: errors.PointsError) -> None:
    """Keep an audit record of a refused conflict-of-interest attempt.

    The request's own work was rolled back with the refusal; the record is then written and
    committed on its own, in the request's session.
    """
    if error.code != "conflict_of_interest":
        return
    from api.web.identity import current_user_id
    from points.audit import record

    session = db()
    record(
        session,
        actor_id=current_user_id(),
        village_id=getattr(g.get("village"), "id", None),
        action="refused.conflict_of_interest",
        object_type="household",
        object_id=error.details.get("household_id"),
        summary=error.message,
        details={"path": request.path},
        remote_addr=client_ip(),
        now=utcnow(),
    )
    session.commit()


ERROR_TEXT = {
    400: "请求格式不正确",
    401: "未登录",
    403: "无权限",
    404: "找不到",
    409: "与现有数据冲突",
    413: "内容过大",
    422: "输入有误",
}


def documented_errors(blp, *codes):
    """Document the envelope responses a view can give (default: 401, 403, 404)."""

    def wrap(fn):
        for code in codes or (401, 403, 404):
            fn = blp.alt_response(code, description=ERROR_TEXT.get(code, "错误"))(fn)
        return fn

    return wrap
