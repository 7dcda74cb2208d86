"""HTTP record at 16 concurrent clients: POST /claims (one act) and /claims/batch (20 households)
against a bare Flask endpoint doing one INSERT, on the same server setup and database.

    python bench/http_record.py                                         # SQLite, waitress
    python bench/http_record.py --url postgresql://root@127.0.0.1/test  # PostgreSQL, gunicorn

Servers as deployed: on SQLite waitress with 8 threads as `points serve` runs it (`api.server`); on
PostgreSQL `gunicorn --workers 3` (the Dockerfile's command). Both apps run in that server at
once, on one database; the bare app's table is created beside the project's schema and its
engine comes from `points.db.make_engine` (so SQLite writes also begin with BEGIN IMMEDIATE).
Load: `wrk` (Debian package) with a Lua script, 16 connections, fixed duration, `--latency`.
Runs alternate bare / record / batch for `--rounds` rounds so that load from other processes
hits all alike, with a pause between runs so that requests still queued in the server when wrk
stops do not hold the database into the next run; the ratio is of median requests per second. Errors are wrk's non-2xx responses
plus socket errors. `--starts N` runs the rounds on N fresh pairs of servers and reports each
start's ratio beside the medians of all runs: served CPU per request moves 10-30 % from one
server start to the next on this machine kind.

A second yardstick runs beside the issue's: `audited`, the bare app's endpoint that also signs
the caller in by their bearer token (one SELECT) and writes an audit event naming them beside
its row, in one transaction (on PostgreSQL with the audit table's foreign keys): the least any
accepted record must do. It is reported as its own ratio, not in place of the bare one.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url, text  # noqa: E402

from api.migrate import upgrade  # noqa: E402
from points import catalog  # noqa: E402
from points.auth.passwords import hash_password  # noqa: E402
from points.catalog.rules import rule_from_dict  # noqa: E402
from points.db import make_engine, make_sessionmaker  # noqa: E402
from points.models import RoleAssignment, Scheme, User, Village  # noqa: E402
from points.models.org import Role  # noqa: E402
from points.org.roster import import_roster  # noqa: E402

PASSWORD = "bench-password-1"
RULE = {
    "code": "ZZ-99",
    "name": "参加村民会议",
    "category": "自治",
    "sign": 1,
    "points": 1,
    "unit": "time",
    "review": "never",
    "recorder_roles": ["admin", "recorder"],
    "subjects": ["household"],
}
BARE_APP = """
import hashlib
import os
from datetime import UTC, datetime
from flask import Flask, jsonify, request
from sqlalchemy import text
from points.db import make_engine

app = Flask(__name__)
engine = make_engine(os.environ["POINTS_DATABASE_URL"])


@app.post("/bare")
def bare():
    body = request.get_json()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO bench_rows (household_id, points, created_at) VALUES (:h, 1, :t)"),
            {"h": body["household_id"], "t": datetime.now(UTC).isoformat()},
        )
    return jsonify({"ok": True}), 201


@app.post("/audited")
def audited():
    # The least any accepted record must do, by hand: sign the caller in by their token, write
    # the row and an audit event naming the caller, in one transaction.
    body = request.get_json()
    header = request.headers.get("Authorization", "")
    digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    now = datetime.now(UTC).isoformat()
    with engine.begin() as conn:
        user_id = conn.execute(
            text("SELECT user_id FROM api_tokens WHERE token_hash = :d"), {"d": digest}
        ).scalar()
        if user_id is None:
            return jsonify({"error": "unauthorized"}), 401
        row_id = conn.execute(
            text(
                "INSERT INTO bench_rows (household_id, points, created_at) "
                "VALUES (:h, 1, :t) RETURNING id"
            ),
            {"h": body["household_id"], "t": now},
        ).scalar()
        conn.execute(
            text(
                "INSERT INTO audit_events (village_id, actor_id, action, object_type, "
                "object_id, summary, created_at) "
                "SELECT id, :u, 'bench.record', 'bench_row', :o, '', :t FROM villages "
                "WHERE code = 'bench'"
            ),
            {"u": user_id, "o": str(row_id), "t": now},
        )
    return jsonify({"id": row_id}), 201
"""
LUA = """
local households = {%(households)s}
local counter = 0
local mode = "%(mode)s"
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}
request = function()
  counter = counter + 1
  local i = (counter * 7919) %% #households + 1
  local body
  if mode == "batch" then
    local subjects = {}
    for k = 0, 19 do
      subjects[#subjects + 1] = string.format('{"household_id": %%d}', households[(i + k) %% #households + 1])
    end
    body = string.format('{"title": "清扫村道", "rule_code": "ZZ-99", "occurred_on": "%(day)s", "subjects": [%%s]}', table.concat(subjects, ","))
  else
    body = string.format('{"household_id": %%d, "rule_code": "ZZ-99", "occurred_on": "%(day)s"}', households[i])
  end
  return wrk.format("POST", "%(path)s", headers, body)
end
"""


def setup(url: str, households: int) -> list[int]:
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with make_sessionmaker(engine).begin() as s:
        village = Village(code="bench", name="测试村", town="城关镇", county="示范县")
        s.add(village)
        s.flush()
        scheme = Scheme(
            village_id=village.id,
            code="household",
            name="户积分",
            subject_kind="household",
            period_kind="quarter",
            redeemable=True,
        )
        s.add(scheme)
        s.flush()
        rows = [
            (
                i + 2,
                {"number": f"{i + 1:04d}", "group": "一组", "name": f"户主{i}", "is_head": "是"},
            )
            for i in range(households)
        ]
        import_roster(s, village=village, rows=rows, actor_id=None, now=now)
        draft = catalog.create_draft(
            s, scheme=scheme, rules=[rule_from_dict(RULE)], title="bench", actor_id=None, now=now
        )
        catalog.adopt(
            s,
            version=draft,
            body="村民代表大会",
            adopted_on=date(2026, 1, 1),
            actor_id=None,
            now=now,
        )
        user = User(
            username="bench-admin", display_name="管理员", password_hash=hash_password(PASSWORD)
        )
        user.roles.append(RoleAssignment(role=Role.ADMIN, village_id=village.id))
        s.add(user)
        ids = list(
            s.execute(
                text("SELECT id FROM households WHERE village_id = :v"), {"v": village.id}
            ).scalars()
        )
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY"
            + (" GENERATED BY DEFAULT AS IDENTITY" if engine.dialect.name == "postgresql" else "")
            + ", household_id INTEGER NOT NULL, points INTEGER NOT NULL, created_at TEXT NOT NULL)"
        )
    engine.dispose()
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(url: str, app_dir: str, root: Path) -> dict:
    """The servers' environment: the bench database, no migration, `app_dir` (the bare app's
    module) and `root` (the tree served) on the path."""
    return dict(
        os.environ,
        POINTS_DATABASE_URL=url,
        POINTS_AUTO_MIGRATE="false",
        POINTS_SECRET_KEY="bench",
        PYTHONPATH=f"{app_dir}:{root}",
    )


def waitress_command(module: str, port: int, prelude: str = "") -> list[str]:
    """`module` ("package.module:app") served by waitress through `api.server` (decision 0033).
    `prelude`: Python run once the app is loaded, with it as `app` (a probe's set-up)."""
    return [
        sys.executable,
        "-c",
        f"import importlib; from api.server import serve; m, a = {module!r}.split(':'); "
        f"app = getattr(importlib.import_module(m), a); {prelude + '; ' if prelude else ''}"
        f"serve(app, host='127.0.0.1', port={port}, threads=8)",
    ]


def start(kind: str, module: str, port: int, env: dict, cwd: Path) -> subprocess.Popen:
    if kind == "gunicorn":
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            module,
        ]
    else:
        cmd = waitress_command(module, port)
    # The server's log goes to a file: a pipe nobody reads fills up (waitress warns about its
    # queue depth under load) and then blocks the server.
    log = open(Path(env["PYTHONPATH"].split(":")[0], f"{port}.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(Path(log.name).read_text()) from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{module} did not start")


def token(port: int) -> str:
    import json
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/token",
        data=json.dumps({"username": "bench-admin", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["token"]


def drain(port: int, pause: float) -> None:
    """Wait until the server answers its health check quickly (its queue is empty)."""
    import urllib.request

    time.sleep(pause)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=60) as r:
            r.read()
        if time.monotonic() - t0 < 0.2:
            return
        time.sleep(1)


def _cpu_of(pids, part: slice = slice(11, 13)) -> float:
    """CPU seconds the processes `pids` have used so far (Linux /proc): user and system by
    default, `_SYSTEM` for the kernel's part alone."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(f) for f in fields[part])
    return total / os.sysconf("SC_CLK_TCK")


_SYSTEM = slice(12, 13)


def _tree(pid: int) -> set[int]:
    """`pid` and its descendants (a gunicorn master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        todo.extend(children.get(p, ()))
    return found


class CpuMeter:
    """CPU per request across everything a run keeps busy: the server's processes, the
    database's backends (PostgreSQL: those connected to the bench database) and wrk. Unlike
    requests per second, it hardly moves when other work shares the machine, so it checks the
    throughput ratio on a machine that is not quiet."""

    def __init__(self, url: str):
        self.url = url
        self.admin = make_engine(url) if url.startswith("postgresql") else None

    def _backends(self) -> set[int]:
        if self.admin is None:
            return set()
        with self.admin.connect() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalars()
            )

    def start(self, server_pid: int) -> None:
        self.server = _tree(server_pid)
        self.backends = self._backends()
        self.before = {p: _cpu_of([p]) for p in self.server | self.backends}
        self.server_system = _cpu_of(self.server, _SYSTEM)
        self.children = _children_cpu()

    def stop(self, requests: int) -> dict:
        """CPU milliseconds per request since `start`: in all ("cpu"), and the server's, the
        database backends' and the load generator's parts."""
        backends = self.backends | self._backends()  # one that only started during the run
        per = max(requests, 1) / 1000

        def used(pids) -> float:
            return sum(_cpu_of([p]) - self.before.get(p, 0.0) for p in pids)

        parts = {
            "server": used(self.server) / per,
            "database": used(backends - self.server) / per,
            "client": (_children_cpu() - self.children) / per,
        }
        # The server's time in the kernel (sockets, locks, thread switches): part of "server".
        system = (_cpu_of(self.server, _SYSTEM) - self.server_system) / per
        return {"cpu": sum(parts.values()), **parts, "server_system": system}


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
    return usage.ru_utime + usage.ru_stime


def wrk(port: int, script: Path, path: str, args) -> dict:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, args.clients)}",
            f"-c{args.clients}",
            f"-d{args.duration}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=args.duration + 120,
    ).stdout

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

    if "requests in" not in out or re.search(r"Requests/sec:\s+0\.00", out):
        print(out, file=sys.stderr)
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": ms(50),
        "p99": ms(99),
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


def open_database(url: str | None):
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_http_")
        return f"sqlite:///{tmp.name}/http.db", tmp.cleanup
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin.url).set(database=name).render_as_string(hide_password=False), drop


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="PostgreSQL URL (default: a fresh SQLite file, waitress)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=int, default=15, help="seconds per run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per server start")
    p.add_argument(
        "--starts", type=int, default=1, help="server starts (fresh servers each; medians of all)"
    )
    p.add_argument("--households", type=int, default=2000)
    p.add_argument(
        "--pause", type=float, default=3, help="seconds to wait before checking the server drained"
    )
    args = p.parse_args(argv)
    url, cleanup = open_database(args.url)
    procs = []
    with tempfile.TemporaryDirectory(prefix="bench_http_app_") as tmp:
        try:
            households = setup(url, args.households)
            Path(tmp, "bare_app.py").write_text(BARE_APP)
            env = server_env(url, tmp, ROOT)
            server = "gunicorn" if url.startswith("postgresql") else "waitress"
            runs: dict = {mode: [] for mode in MODES}
            per_start = []
            meter = CpuMeter(url)
            day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
            for begun in range(args.starts):
                # Fresh servers each start: served CPU per request moves 10-30 % from one
                # server start to the next, so one start's ratio is one sample.
                ours_port, bare_port = free_port(), free_port()
                procs[:] = [
                    start(server, "api.wsgi:app", ours_port, env, ROOT),
                    start(server, "bare_app:app", bare_port, env, ROOT),
                ]
                scripts = _scripts(tmp, households, token(ours_port), day)
                these: dict = {mode: [] for mode in MODES}
                for r in range(args.rounds):
                    for mode in MODES:
                        theirs = mode in ("bare", "audited")
                        port = bare_port if theirs else ours_port
                        meter.start(procs[1 if theirs else 0].pid)
                        res = wrk(port, scripts[mode], "", args)
                        res |= meter.stop(res["requests"])
                        # Let the server finish what wrk left queued before the next run
                        # starts: queued writes would hold SQLite's lock into the other run.
                        drain(ours_port, args.pause)
                        these[mode].append(res)
                        print(
                            f"  start {begun + 1} round {r + 1} {mode:<6} {res['rps']:8.1f} req/s  "
                            f"p50 {res['p50']:7.1f} ms  p99 {res['p99']:7.1f} ms  "
                            f"errors {res['errors']}  CPU {res['cpu']:.2f} ms/request "
                            f"(server {res['server']:.2f} of which kernel "
                            f"{res['server_system']:.2f}, database {res['database']:.2f}, "
                            f"client {res['client']:.2f})",
                            flush=True,
                        )
                _stop(procs)
                procs.clear()
                for mode, found in these.items():
                    runs[mode] += found
                per_start.append(
                    {
                        key: statistics.median(x[field] for x in these[mode])
                        for mode in ("bare", "single", "audited")
                        for key, field in ((mode, "rps"), (f"{mode}_cpu", "cpu"))
                    }
                )
            bare = statistics.median(x["rps"] for x in runs["bare"])
            print(
                f"\n{server} on {make_url(url).get_backend_name()}, {args.clients} clients, "
                f"{args.duration} s x {args.rounds} rounds x {args.starts} server starts"
            )
            print(
                "single / bare per start, by req/s: "
                + ", ".join(f"{x['single'] / x['bare']:.2f}" for x in per_start)
                + "; by CPU: "
                + ", ".join(f"{x['bare_cpu'] / x['single_cpu']:.2f}" for x in per_start)
            )
            print(
                "single / audited per start, by req/s: "
                + ", ".join(f"{x['single'] / x['audited']:.2f}" for x in per_start)
                + "; by CPU: "
                + ", ".join(f"{x['audited_cpu'] / x['single_cpu']:.2f}" for x in per_start)
            )
            bare_cpu = statistics.median(x["cpu"] for x in runs["bare"])
            print(
                "| endpoint | req/s (median) | claims/s | p50 ms | p99 ms | errors | ratio to bare req/s "
                "| CPU ms/request | ratio by CPU |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for mode, per in (("bare", 1), ("audited", 1), ("single", 1), ("batch", 20)):
                rps = statistics.median(x["rps"] for x in runs[mode])
                p50 = statistics.median(x["p50"] for x in runs[mode])
                p99 = statistics.median(x["p99"] for x in runs[mode])
                errors = sum(x["errors"] for x in runs[mode])
                cpu = statistics.median(x["cpu"] for x in runs[mode])
                print(
                    f"| {mode} | {rps:.1f} | {rps * per:.1f} | {p50:.1f} | {p99:.1f} | {errors} "
                    f"| {rps / bare:.2f} | {cpu:.2f} | {bare_cpu / cpu:.2f} |"
                )
        finally:
            _stop(procs)
            cleanup()
    return 0


# Interleaved in this order in every round. "audited" is the second yardstick (not the issue's):
# the bare app signing the caller in and writing an audit event beside its row.
MODES = ("bare", "audited", "single", "batch")


def _scripts(tmp: str, households: list[int], bearer: str, day: str) -> dict[str, Path]:
    scripts = {}
    for mode, path in (
        ("single", "/api/v1/villages/bench/claims"),
        ("batch", "/api/v1/villages/bench/claims/batch"),
        ("bare", "/bare"),
        ("audited", "/audited"),
    ):
        scripts[mode] = Path(tmp, f"{mode}.lua")
        scripts[mode].write_text(
            LUA
            % {
                "households": ",".join(map(str, households)),
                "mode": mode,
                "token": bearer,
                "day": day,
                "path": path,
            }
        )
    return scripts


def _stop(procs) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
