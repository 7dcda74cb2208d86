"""Two probes inside the served processes of `bench/http_record.py` (SQLite, waitress), per run:
the time Python's garbage collector took, and the share of the wall time the app's one writing
connection (decision 0036) was checked out of its pool.

    python bench/served_probes.py --duration 10 --rounds 1

Each server process appends a line a second to a file (`gc.callbacks` around every collection;
the writing engine's pool `checkout` and `checkin` events); each run's figures are the
difference between the lines nearest its start and its end. The probes cost a little
themselves, so the rates printed here are not the bench's: read the shares, not the req/s.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def install(app, out: str) -> None:
    """In the server process: start the probes for `app` (the bare app has no writing engine:
    the garbage collector alone), writing to `out`."""
    state = {"gc": 0.0, "full": 0, "held": 0.0, "checkouts": 0}
    began: dict = {}

    def collected(phase, info):
        if phase == "start":
            began["gc"] = time.perf_counter()
        elif "gc" in began:
            state["gc"] += time.perf_counter() - began.pop("gc")
            state["full"] += info["generation"] == 2

    gc.callbacks.append(collected)
    engine = app.extensions.get("points.engine") if hasattr(app, "extensions") else None
    if engine is not None and engine.dialect.name == "sqlite":
        from sqlalchemy import event

        held = threading.local()

        @event.listens_for(engine.pool, "checkout")
        def _out(*_):
            held.since = time.perf_counter()

        @event.listens_for(engine.pool, "checkin")
        def _in(*_):
            since = getattr(held, "since", None)
            if since is not None:
                state["held"] += time.perf_counter() - since
                state["checkouts"] += 1
                held.since = None

    def write():
        with open(out, "a") as f:
            while True:
                time.sleep(1)
                f.write(
                    f"{time.time():.3f} {state['gc']:.6f} {state['full']} "
                    f"{state['held']:.6f} {state['checkouts']}\n"
                )
                f.flush()

    threading.Thread(target=write, daemon=True).start()


def main(argv=None) -> int:
    import tempfile

    from bench import http_record as hr

    folder = tempfile.mkdtemp(prefix="bench_probes_")
    windows: list[tuple[int, str, float, float, int]] = []
    ports: dict[int, str] = {}

    def command(module: str, port: int) -> list[str]:
        ports[port] = module
        out = f"{folder}/{port}.txt"
        prelude = f"from bench.served_probes import install; install(app, {out!r})"
        return real_command(module, port, prelude)

    real_command, real_wrk = hr.waitress_command, hr.wrk

    def wrk(port, script, path, args):
        begun = time.time()
        found = real_wrk(port, script, path, args)
        windows.append((port, Path(script).stem, begun, time.time(), found["requests"]))
        return found

    hr.waitress_command, hr.wrk = command, wrk
    done = hr.main(argv)
    print(
        "\n| run | requests | GC ms a request | full collections "
        "| writer held (share of wall time) | ms held a request |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for port, name, begun, ended, requests in windows:
        path = Path(folder, f"{port}.txt")
        lines = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
        if not lines:
            continue

        a, b = (min(lines, key=lambda x, t=t: abs(float(x[0]) - t)) for t in (begun, ended))
        span = max(float(b[0]) - float(a[0]), 1e-9)
        gc_ms = (float(b[1]) - float(a[1])) * 1000 / max(requests, 1)
        held = float(b[3]) - float(a[3])
        share = f"{held / span:.2f}" if ports[port] == "api.wsgi:app" else "—"
        per = f"{held * 1000 / max(requests, 1):.2f}" if ports[port] == "api.wsgi:app" else "—"
        print(f"| {name} | {requests} | {gc_ms:.3f} | {int(b[2]) - int(a[2])} | {share} | {per} |")
    return done


if __name__ == "__main__":
    sys.exit(main())
