"""Instructions per request as served: the waitress server of `bench/http_record.py` runs under
callgrind, instrumented only while this process sends `--records` requests over one keep-alive
connection (after a warm-up), so the count covers waitress, Flask and the app but neither the
client nor the start-up. Deterministic where the served CPU per request is not (it moves by
10-30 % from one server start to the next on this machine kind).

    python bench/served_callgrind.py single            # our record endpoint, SQLite
    python bench/served_callgrind.py bare              # the bare one-INSERT app
    POINTS_TREE=/path/to/other/checkout python bench/served_callgrind.py single   # A/B
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# POINTS_TREE: serve another checkout's code (A/B); the bench's own helpers come from this tree.
HERE = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("POINTS_TREE") or HERE)
sys.path.insert(0, str(HERE))

from bench import http_record as hr  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("single", "bare"))
    p.add_argument("--records", type=int, default=100, help="requests counted")
    p.add_argument("--warmup", type=int, default=100, help="requests sent before counting")
    p.add_argument("--out", default=None, help="callgrind output file (default: a temporary one)")
    args = p.parse_args(argv)
    url, cleanup = hr.open_database(None)
    with tempfile.TemporaryDirectory(prefix="bench_served_") as tmp:
        try:
            households = hr.setup(url, 400)
            Path(tmp, "bare_app.py").write_text(hr.BARE_APP)
            out = args.out or str(Path(tmp, "callgrind.out"))
            count = _count(args, url, households, tmp, out)
        finally:
            cleanup()
    print(f"{args.kind}: {count / args.records / 1e6:.2f} M instructions per request (served)")
    return 0


def _count(args, url: str, households: list[int], tmp: str, out: str) -> int:
    # PYTHONHASHSEED: fixed dict and set layouts, so the count repeats to a few K.
    env = hr.server_env(url, tmp, ROOT) | {"PYTHONHASHSEED": "0"}
    module = "bare_app:app" if args.kind == "bare" else "api.wsgi:app"
    port = hr.free_port()
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    with open(Path(tmp, "server.log"), "wb") as log:
        proc = subprocess.Popen(
            [*cmd, *hr.waitress_command(module, port)], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            _wait_listening(port)
            headers = {"Content-Type": "application/json"}
            if args.kind == "single":
                headers["Authorization"] = f"Bearer {hr.token(port)}"
            path = "/bare" if args.kind == "bare" else "/api/v1/villages/bench/claims"
            day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

            def send(i: int) -> None:
                household = households[(i * 7919) % len(households)]
                body = {"household_id": household, "rule_code": "ZZ-99", "occurred_on": day}
                conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 201:
                    raise RuntimeError(f"request {i}: HTTP {response.status}")

            for i in range(args.warmup):
                send(i)
            _instrument(proc.pid, "on")
            for i in range(args.warmup, args.warmup + args.records):
                send(i)
            _instrument(proc.pid, "off")
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    totals = [line for line in Path(out).read_text().splitlines() if line.startswith("totals:")]
    return int(totals[-1].split()[1])


def _wait_listening(port: int) -> None:
    # Python under valgrind starts in ~20 s; bounded at two minutes.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=5).connect()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the server did not start under valgrind within two minutes")


def _instrument(pid: int, state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(pid)], check=True, capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
