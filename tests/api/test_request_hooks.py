"""What the app's per-request hooks guarantee on every request: oversized bodies and NUL text
refused before a view runs, the rate limit's headers on sign-in, and one JSON request log line
per request, through `logging` whenever the deployment configured the logger itself."""

from __future__ import annotations

import io
import json
import logging

import pytest

from api import SECURITY_HEADERS
from api.backups import metrics
from tests.api.conftest import auth, make_app

# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,ctype",
    [
        (b'{"name": "a\x00b"}', "application/json"),
        (b'{"name": "a\\u0000b"}', "application/json"),
        (b'{"name": "a\\u0000b"}', "application/json; charset=utf-8"),
        (b'{"name": "a\\u0000b"}', "Application/Merge-Patch+JSON"),
        (b"name=a%00b", "application/x-www-form-urlencoded"),
        (b"name=a%00b", "Application/X-WWW-Form-Urlencoded; charset=utf-8"),
    ],
)
def test_nul_in_a_body_is_refused(client, world, body, ctype):
    response = client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        data=body,
        headers=auth(world.tokens["admin"], **{"Content-Type": ctype}),
    )
    assert response.status_code == 400 and response.json["error"] == "bad_request"


def test_nul_in_a_multipart_text_field_is_refused_not_in_a_file(client, world):
    url = f"/api/v1/villages/{world.a.code}/groups"
    text = client.post(
        url,
        data={"name": "a\x00b"},
        headers=auth(world.tokens["admin"]),
        content_type="multipart/form-data",
    )
    assert text.status_code == 400 and text.json["error"] == "bad_request"
    file = client.post(
        url,
        data={"file": (io.BytesIO(b"\x00\x00"), "x.bin")},
        headers=auth(world.tokens["admin"]),
        content_type="multipart/form-data",
    )
    assert file.status_code != 400 or file.json["error"] != "bad_request"


@pytest.mark.parametrize("query", ["q=%00", "q=a%00", "q=\x00", "a=1&q=%00"])
def test_nul_in_the_query_is_refused(client, world, query):
    response = client.get(
        f"/api/v1/villages/{world.a.code}/households?{query}",
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 400 and response.json["error"] == "bad_request"


@pytest.mark.parametrize("query", ["q=%2500", "q=%01", "q=0"])
def test_a_query_without_nul_is_answered(client, world, query):
    response = client.get(
        f"/api/v1/villages/{world.a.code}/households?{query}",
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 200


def test_a_declared_length_over_the_limit_is_refused_whatever_the_type(db_url, world):
    app = make_app(db_url, MAX_CONTENT_LENGTH=64)
    client = app.test_client()
    for ctype in ("application/json", "text/plain", "application/octet-stream"):
        response = client.post(
            f"/api/v1/villages/{world.a.code}/groups",
            data=b"x" * 65,
            headers=auth(world.tokens["admin"], **{"Content-Type": ctype}),
        )
        assert response.status_code == 413 and response.json["error"] == "too_large"
    at_limit = client.post(
        f"/api/v1/villages/{world.a.code}/groups",
        data=json.dumps({"name": "x" * 40}).encode().ljust(64),
        headers=auth(world.tokens["admin"], **{"Content-Type": "application/json"}),
    )
    assert at_limit.status_code == 201, at_limit.json


# --- rate limit headers ------------------------------------------------------------------------


def test_sign_in_answers_carry_the_rate_limit_headers(db_url):
    app = make_app(db_url, SIGNIN_RATE_LIMIT="2 per minute")
    client = app.test_client()
    answers = [
        client.post("/api/v1/auth/token", json={"username": "x", "password": "y"}) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert [a.headers["X-RateLimit-Limit"] for a in answers] == ["2", "2", "2"]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert "Retry-After" in answers[2].headers and "X-RateLimit-Reset" in answers[2].headers
    # A request that checks no limit carries none of them.
    assert "X-RateLimit-Limit" not in client.get("/api/v1/me").headers


def test_limit_headers_stay_with_their_request_inside_one_app_context(db_url):
    # g lives as long as the app context: here every request shares one.
    app = make_app(db_url, SIGNIN_RATE_LIMIT="5 per minute")
    client = app.test_client()
    with app.app_context():
        signin = client.post("/api/v1/auth/token", json={"username": "x", "password": "y"})
        assert signin.headers["X-RateLimit-Remaining"] == "4"
        assert "X-RateLimit-Limit" not in client.get("/api/v1/me").headers
        again = client.post("/api/v1/auth/token", json={"username": "x", "password": "y"})
        assert again.headers["X-RateLimit-Remaining"] == "3"


def test_the_sign_in_page_carries_the_rate_limit_headers(db_url):
    app = make_app(db_url, SIGNIN_RATE_LIMIT="5 per minute", TESTING=True)
    client = app.test_client()
    page = client.get("/login")
    assert "X-RateLimit-Limit" not in page.headers  # GET is not limited
    text = page.get_data(as_text=True)
    token = text.split('name="csrf_token" value="')[1].split('"')[0]
    posted = client.post("/login", data={"csrf_token": token, "username": "x", "password": "y"})
    assert posted.headers["X-RateLimit-Limit"] == "5"


# --- request log -------------------------------------------------------------------------------


@pytest.fixture
def own_request_log():
    """The request log as `points serve` configures it (not under TESTING), writing to a
    buffer; the logger is put back as it was afterwards (it is global to the process)."""
    logger = metrics.request_log
    saved = (logger.handlers[:], logger.level, logger.propagate, logger.filters[:])
    logger.handlers.clear()
    buffer = io.StringIO()
    metrics.configure_request_log(stream=buffer)
    yield buffer
    # (pytest attaches its capture handler to non-propagating loggers for each test phase;
    # the tests drop it with _only_ours so the lines take the path they take when served.)
    logger.handlers[:], logger.filters[:] = saved[0], saved[3]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _only_ours(buffer):
    """Drop pytest's handler and what the fixtures' requests logged."""
    logger = metrics.request_log
    logger.handlers[:] = [h for h in logger.handlers if type(h) is metrics._LineHandler]
    assert metrics._line_handler() is not None
    buffer.seek(0)
    buffer.truncate()


LOG_KEYS = ["ts", "village", "method", "route", "status", "duration_ms"]


def _lines(text: str) -> list[dict]:
    assert text.endswith("\n")
    lines = text.splitlines()
    for line in lines:  # the format json.dumps gives, key order included
        assert line == json.dumps(json.loads(line), ensure_ascii=False)
        assert list(json.loads(line)) == LOG_KEYS
    return [json.loads(line) for line in lines]


def test_the_request_log_writes_one_json_line_per_request(own_request_log, app, client, world):
    _only_ours(own_request_log)
    client.get(f"/v/{world.a.code}/")
    client.get("/api/v1/villages/%E6%9D%91%22%5C/claims")  # 村"\ : quoted in the line
    client.get("/no-such-page")
    first, odd, unmatched = _lines(own_request_log.getvalue())
    assert first["village"] == world.a.code and first["route"] == "/v/<code>/"
    assert first["method"] == "GET" and first["status"] == 302
    assert isinstance(first["duration_ms"], float) and first["ts"].endswith("+00:00")
    assert odd["village"] == '村"\\' and odd["route"] == "/api/v1/villages/<code>/claims"
    assert unmatched["village"] is None and unmatched["route"] == "<unmatched>"
    assert unmatched["status"] == 404


def test_a_handler_the_deployment_adds_gets_the_lines(own_request_log, app, client, world):
    caught = []

    class Catch(logging.Handler):
        def emit(self, record):
            caught.append(record.getMessage())

    _only_ours(own_request_log)
    metrics.request_log.addHandler(Catch())
    client.get(f"/v/{world.a.code}/")
    assert [json.loads(m)["route"] for m in caught] == ["/v/<code>/"]
    assert _lines(own_request_log.getvalue())[0]["route"] == "/v/<code>/"


def test_a_filter_or_level_the_deployment_sets_is_honoured(own_request_log, app, client, world):
    _only_ours(own_request_log)
    metrics.request_log.addFilter(lambda record: "<unmatched>" not in record.getMessage())
    client.get("/no-such-page")
    client.get(f"/v/{world.a.code}/")
    assert [line["route"] for line in _lines(own_request_log.getvalue())] == ["/v/<code>/"]
    metrics.request_log.setLevel(logging.WARNING)
    client.get(f"/v/{world.a.code}/")
    assert len(own_request_log.getvalue().splitlines()) == 1


def test_a_logger_the_deployment_configured_is_left_alone(db_url, tmp_path):
    logger = metrics.request_log
    saved = (logger.handlers[:], logger.level)
    caught = []

    class Catch(logging.Handler):
        def emit(self, record):
            caught.append(record.getMessage())

    logger.handlers[:] = [catch := Catch()]
    logger.setLevel(logging.INFO)
    try:
        app = make_app(db_url, TESTING=False, BACKUP_DIR=str(tmp_path))
        assert logger.handlers == [catch]
        app.test_client().get("/no-such-page")
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
    assert [json.loads(m)["status"] for m in caught] == [404]


def test_a_log_stream_that_fails_is_reported_and_the_request_answered(
    own_request_log, client, world, capsys
):
    _only_ours(own_request_log)
    own_request_log.close()
    assert client.get(f"/v/{world.a.code}/").status_code == 302
    assert "--- Logging error ---" in capsys.readouterr().err


# --- security headers --------------------------------------------------------------------------


def test_security_headers_are_added_once_and_a_view_s_own_are_kept(app):
    @app.get("/own-headers")
    def own_headers():
        return "x", 200, {"x-frame-options": "SAMEORIGIN"}

    client = app.test_client()
    plain = client.get("/no-such-page").headers
    own = client.get("/own-headers").headers
    for name, value in SECURITY_HEADERS.items():
        assert plain.getlist(name) == [value]
    assert own.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert own.getlist("Referrer-Policy") == ["same-origin"]


def test_a_record_is_logged_and_counted_after_its_commit(own_request_log, app, client, world):
    # Counting and the log line come after the edge's commit: on SQLite the write lock every
    # writer queues for is not held while the line is written, and the line's duration
    # includes the commit. Seen from the log line: the claim is already readable by another
    # connection, and the request's session is gone.
    from flask import g
    from sqlalchemy import text

    seen = []
    engine = app.extensions["points.engine"]
    write = metrics._log_line

    def spy(line):
        with engine.connect() as other:
            count = other.execute(text("SELECT count(*) FROM claims")).scalar_one()
        seen.append((json.loads(line)["route"], count, "db_session" in g))
        write(line)

    _only_ours(own_request_log)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM claims")).scalar_one()
    metrics._log_line = spy
    try:
        response = client.post(
            f"/api/v1/villages/{world.a.code}/claims",
            json={
                "household_id": world.home2.id,
                "rule_code": "ZZ-09",
                "occurred_on": "2026-11-20",
            },
            headers=auth(world.tokens["admin"]),
        )
    finally:
        metrics._log_line = write
    assert response.status_code == 201, response.json
    assert seen == [("/api/v1/villages/<code>/claims", before + 1, False)]


def test_a_commit_that_fails_is_logged_as_the_500_it_becomes(
    own_request_log, app, client, world, monkeypatch
):
    # The count and the log line come after the commit: a commit that fails is logged with
    # the status the client gets, not the 201 the view had answered. Nothing is recorded.
    from sqlalchemy import text

    import api.db

    def failing(session):
        raise RuntimeError("the disk is full")

    engine = app.extensions["points.engine"]
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM claims")).scalar_one()
    _only_ours(own_request_log)
    monkeypatch.setattr(api.db, "commit", failing)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # as served, not as tested
    response = client.post(
        f"/api/v1/villages/{world.a.code}/claims",
        json={"household_id": world.home2.id, "rule_code": "ZZ-09", "occurred_on": "2026-11-20"},
        headers=auth(world.tokens["admin"]),
    )
    assert response.status_code == 500 and response.json["error"]
    (line,) = _lines(own_request_log.getvalue())
    assert line["status"] == 500 and line["route"] == "/api/v1/villages/<code>/claims"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM claims")).scalar_one() == before
