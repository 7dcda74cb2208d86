"""The `points` command as an operator runs it: demo data, verify, serve."""

import os
import socket
import sys
import time
import urllib.request

import pytest

from tests.processes import Child
from tests.processes import points as _points


def test_demo_then_verify_passes_and_prints_the_head(db_url):
    demo = _points(db_url, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "60 户" in demo.stdout and "demo-admin" in demo.stdout
    # Staff and residents are printed apart; residents with phone, PIN and household.
    staff, residents = demo.stdout.split("【村民】")
    assert "【工作人员】" in staff and "demo-admin" in staff and "/town/城关镇" in staff
    lines = [line for line in residents.splitlines() if "PIN" in line and "户号" in line]
    assert len(lines) == 3 and "demo-admin" not in residents
    again = _points(db_url, "demo")
    assert "已存在" in again.stdout

    check = _points(db_url, "verify")
    assert check.returncode == 0, check.stderr
    head_line = next(line for line in check.stdout.splitlines() if line.startswith("demo: head "))
    head = head_line.removeprefix("demo: head ")
    seq, hash_ = head.split(":")
    assert int(seq) > 100 and len(hash_) == 64

    assert _points(db_url, "verify", "--village", "demo", "--head", head).returncode == 0
    ahead = _points(db_url, "verify", "--head", f"{int(seq) + 5}:{hash_}")
    assert ahead.returncode == 1
    assert "before the expected head" in ahead.stderr


def test_verify_rejects_a_malformed_head(db_url):
    result = _points(db_url, "verify", "--head", "twelve")
    assert result.returncode == 2 and "SEQ:HASH" in result.stderr


def test_verify_names_an_unknown_village(db_url):
    result = _points(db_url, "verify", "--village", "nowhere")
    assert result.returncode == 1 and "nowhere" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200 and b'"ok"' in r.read()
    except OSError:
        return False


def _serve(db_url, port, backups, command=(sys.executable, "-m", "api.cli"), timeout=None) -> Child:
    """Start `points serve --demo` and wait until it answers; the test fails (never hangs) with
    the server's output if it exits or is not up within the timeout. Its scheduler takes the
    day's backup into `backups` (the test's folder, not the checkout's instance/)."""
    env = dict(os.environ, POINTS_DATABASE_URL=db_url, POINTS_BACKUP_DIR=str(backups))
    server = Child([*command, "serve", "--demo", "--port", str(port)], env=env, merge_stderr=True)
    server.wait_until(lambda: _healthy(port), "answering /healthz", timeout=timeout)
    return server


def test_serve_with_demo_answers_health_and_home(db_url, tmp_path):
    port = _free_port()
    with _serve(db_url, port, tmp_path) as server:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            page = r.read().decode()
        assert "示范村" in page and "60 户" in page
        server.proc.terminate()
        server.finish()


def test_a_start_up_slower_than_the_timeout_fails_with_the_output_and_does_not_hang(
    db_url, tmp_path
):
    # The real command, made to print and then sleep for an hour before it starts serving.
    slow = (
        sys.executable,
        "-c",
        "import time; print('starting slowly', flush=True); time.sleep(3600); "
        "from api.cli import main; main()",
    )
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failed:
        _serve(db_url, _free_port(), tmp_path, command=slow, timeout=2)
    assert time.monotonic() - started < 60
    message = str(failed.value)
    assert "not answering /healthz within 2 s (POINTS_TEST_TIMEOUT)" in message
    assert "starting slowly" in message and "exit code: killed" in message
