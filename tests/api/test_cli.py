"""The `points` command as an operator runs it: demo data, verify, serve."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _points(db_url, *args, timeout=120):
    env = dict(os.environ, POINTS_DATABASE_URL=db_url)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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


def test_serve_with_demo_answers_health_and_home(db_url):
    port = _free_port()
    env = dict(os.environ, POINTS_DATABASE_URL=db_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # the demo is built first; CI machines are shared
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200 and b'"ok"' in r.read()
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.terminate()  # reading a live server's output would never return
                    pytest.fail(f"server did not start: {proc.communicate(timeout=10)[0]}")
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            page = r.read().decode()
        assert "示范村" in page and "60 户" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
