"""What the ORM Session's own lifecycle costs a write request on SQLite, against a plain Connection
doing the same database work: the read phase (no transaction), the write turn and BEGIN
IMMEDIATE (`start_writing`), one INSERT, the connection's commit, and closing: what the API's
edge does for a record (`api.db`), without the request around it.

    python bench/session_cost.py                  # CPU µs a round, each way, medians of 5

The engine is the app's writing engine on SQLite (one connection, decision 0036).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from points.db import READ_EACH, READ_ONLY, make_engine, make_sessionmaker, start_writing  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=20000, help="rounds per timing")
    p.add_argument("--repeat", type=int, default=5, help="timings per way (median)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_session_") as folder:
        engine = make_engine(f"sqlite:///{folder}/cost.db", pool_size=1, max_overflow=0)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        maker = make_sessionmaker(engine)
        read_each = {READ_ONLY: True, READ_EACH: True}

        def session_way():
            session = maker()
            session.connection(execution_options=read_each).exec_driver_sql("SELECT 1").all()
            start_writing(session.connection())
            session.connection().exec_driver_sql("INSERT INTO t (v) VALUES (1)")
            session.connection().commit()
            session.close()

        def connection_way():
            conn = engine.connect().execution_options(**read_each)
            conn.exec_driver_sql("SELECT 1").all()
            start_writing(conn)
            conn.exec_driver_sql("INSERT INTO t (v) VALUES (1)")
            conn.commit()
            conn.close()

        found: dict[str, list[float]] = {"session": [], "connection": []}
        for _ in range(args.repeat):
            for name, way in (("session", session_way), ("connection", connection_way)):
                for _ in range(200):
                    way()
                began = time.process_time()
                for _ in range(args.rounds):
                    way()
                found[name].append((time.process_time() - began) / args.rounds * 1e6)
        engine.dispose()
    session, connection = (statistics.median(found[k]) for k in ("session", "connection"))
    print(f"Session    {session:7.1f} µs CPU a round")
    print(f"Connection {connection:7.1f} µs CPU a round")
    print(f"the Session's own part: {session - connection:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
