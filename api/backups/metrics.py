"""/metrics in the Prometheus text format, and one JSON log line per request.

Request counts and latencies and scheduler item outcomes are counted in this process (with
several gunicorn workers, scrape each, or see docs/deploy.md). The last backup's age and the
ledger entries posted are read from the database at scrape time, so they are the same whichever
process answers. Labels carry routes (URL rules such as `/v/<code>/`), methods, statuses, job
names and village codes: never a person, a phone or a path with an id in it.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
import time
from json.encoder import encode_basestring  # type: ignore[attr-defined]

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from points import backups
from points.db import utcnow
from points.models import ChainHead, Village

request_log = logging.getLogger("points.requests")


def init_app(app: Flask) -> None:
    """Create this app's registry and metrics, time every request, and serve /metrics."""
    registry = CollectorRegistry()
    app.extensions["points.metrics"] = {
        "registry": registry,
        "requests": Counter(
            "points_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=registry,
        ),
        "latency": Histogram(
            "points_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=registry,
        ),
        "jobs": Counter(
            "points_scheduler_items",
            "Scheduled work items by job and outcome (done, skipped, failed)",
            ["job", "status"],
            registry=registry,
        ),
        "children": {},
    }
    registry.register(_DatabaseCollector(app))
    _configure_request_log(app)
    app.before_request(_start_timer)
    # Last of the after-request hooks (Flask runs them newest first): after the edge's commit
    # (api.db), so that counting and the log line's write happen outside the request's
    # transaction; on SQLite that transaction holds the one write lock every writer queues
    # for. The duration then includes the commit, and a failed commit is logged as its 500.
    app.after_request_funcs.setdefault(None, []).insert(0, _count_request)
    app.add_url_rule("/metrics", "metrics", _metrics_view)

    from api.scheduler import add_hook

    add_hook(app, "item_done", _count_item)


def _configure_request_log(app: Flask) -> None:
    # One JSON object per line on stderr, unless the deployment configured this logger itself.
    if not request_log.handlers and not app.config.get("TESTING"):
        configure_request_log(sys.stderr)


def configure_request_log(stream) -> None:
    """Log each request as one line on `stream`, and nowhere else."""
    handler = _LineHandler(stream)
    handler.setFormatter(_MESSAGE_ONLY)
    request_log.addHandler(handler)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False


_MESSAGE_ONLY = logging.Formatter("%(message)s")


class _LineHandler(logging.StreamHandler):
    """The handler `configure_request_log` installs: each message and a newline."""


def _line_handler() -> _LineHandler | None:
    """Our handler, when a line logged at INFO would reach it and nothing else, and it still
    writes the bare message: then `_log_line` writes to its stream itself."""
    handlers = request_log.handlers
    if len(handlers) != 1 or request_log.filters or request_log.propagate:
        return None
    handler = handlers[0]
    if (
        type(handler) is _LineHandler
        and handler.formatter is _MESSAGE_ONLY
        and not handler.filters
        and handler.level <= logging.INFO
    ):
        return handler
    return None


def _log_line(line: str) -> None:
    """Log `line` at INFO (the logger is enabled for it). Through our own handler alone, write
    it as the handler would, without the LogRecord, caller lookup and dispatch `logging` costs
    on every request (issue 18); any other configuration gets the line through `logging`."""
    handler = _line_handler()
    if handler is None:
        request_log.info(line)
        return
    try:
        with handler.lock:
            stream = handler.stream
            stream.write(line + handler.terminator)
            stream.flush()
    except Exception:  # as StreamHandler.emit: report on stderr, never fail the request
        handler.handleError(
            request_log.makeRecord(request_log.name, logging.INFO, "", 0, line, None, None)
        )


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def _count_request(response):
    # The request and g resolved once: each use of the proxies costs a context lookup.
    req, ctx = request._get_current_object(), g._get_current_object()
    started = ctx.pop("request_started", None)
    if started is None:
        return response
    duration = time.perf_counter() - started
    route = req.url_rule.rule if req.url_rule is not None else "<unmatched>"
    status = response.status_code
    if route != "/metrics":
        metrics = current_app.extensions["points.metrics"]
        counter, histogram = _children(metrics, req.method, route, status)
        counter.inc()
        histogram.observe(duration)
    if not request_log.isEnabledFor(logging.INFO):
        return response
    village = getattr(ctx.get("village"), "code", None) or (req.view_args or {}).get("code")
    # The line json.dumps(..., ensure_ascii=False) gives for this dict, built by hand: a
    # quarter of the cost. Only the request's texts can need escaping.
    _log_line(
        f'{{"ts": "{utcnow().isoformat(timespec="milliseconds")}", '
        f'"village": {_json(village)}, "method": {_json(req.method)}, '
        f'"route": {_json(route)}, "status": {status}, '
        f'"duration_ms": {round(duration * 1000, 1)!r}}}'
    )
    return response


def _json(value) -> str:
    if type(value) is str:
        return encode_basestring(value)
    return json.dumps(value, ensure_ascii=False)


def _children(metrics: dict, method: str, route: str, status: int):
    """The request counter's and latency histogram's children for these labels, looked up once
    (`labels()` takes a lock and builds the key on every call; this runs on every request)."""
    key = (method, route, status)
    found = metrics["children"].get(key)
    if found is None:
        found = (
            metrics["requests"].labels(method, route, str(status)),
            metrics["latency"].labels(method, route),
        )
        metrics["children"][key] = found  # a benign race: both threads store the same children
    return found


def _count_item(app: Flask, result) -> None:
    app.extensions["points.metrics"]["jobs"].labels(result.item.job, result.status).inc()


def _metrics_view():
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), str(token).encode()):
            return Response("unauthorized\n", status=401, mimetype="text/plain")
    registry = current_app.extensions["points.metrics"]["registry"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _DatabaseCollector:
    """Figures read from the database at scrape time: ledger entries and the last backup."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self):
        return []  # the metrics are read at scrape time; do not collect at registration

    def collect(self):
        maker = self.app.extensions["points.sessionmaker"]
        entries = CounterMetricFamily(
            "points_ledger_entries",
            "Ledger entries posted (each village's chain length)",
            labels=["village"],
        )
        age = GaugeMetricFamily(
            "points_backup_age_seconds",
            "Seconds since the last backup was taken (absent when there is none)",
        )
        with maker() as session:
            for code, seq in session.execute(
                select(Village.code, func.coalesce(ChainHead.seq, 0))
                .outerjoin(ChainHead, ChainHead.village_id == Village.id)
                .order_by(Village.code)
            ):
                entries.add_metric([code], seq)
            last = backups.last_backup_at(session)
        yield entries
        if last is not None:
            age.add_metric([], (utcnow() - last).total_seconds())
            yield age
