"""The child-process helpers never hang: each wait that runs out kills the child and fails the
test with what the child printed (tests/api/test_cli.py does the same for a slow server)."""

import sys
import time

import pytest

from tests import processes
from tests.processes import Child

SLEEPER = [
    sys.executable,
    "-c",
    "import sys, time; print('hello', flush=True); print('oops', file=sys.stderr, flush=True); "
    "time.sleep(3600)",
]


def _fails_fast(call) -> str:
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failed:
        call()
    assert time.monotonic() - started < 30
    return str(failed.value)


def test_run_kills_a_child_past_the_timeout_and_fails_with_its_output():
    message = _fails_fast(lambda: processes.run(SLEEPER, timeout=1))
    assert "did not finish within 1 s (POINTS_TEST_TIMEOUT)" in message
    assert "hello" in message and "oops" in message


def test_waiting_for_a_line_that_never_comes_fails_and_kills_the_child():
    child = Child(SLEEPER)
    message = _fails_fast(lambda: child.expect_line("ready", timeout=1))
    assert "did not print 'ready' within 1 s" in message and "hello" in message
    assert "exit code: killed" in message and child.returncode is not None


def test_a_child_that_exits_early_fails_the_wait_at_once_with_its_output():
    child = Child([sys.executable, "-c", "import sys; sys.exit('cannot start')"])
    message = _fails_fast(lambda: child.wait_until(lambda: False, "ready"))
    assert "exited before ready" in message
    assert "exit code: 1" in message and "cannot start" in message


def test_a_child_that_does_not_exit_fails_the_finish():
    child = Child(SLEEPER)
    child.expect_line("hello")
    message = _fails_fast(lambda: child.finish(timeout=1))
    assert "did not exit within 1 s" in message and "oops" in message


def test_the_default_timeout_is_the_one_setting(monkeypatch):
    monkeypatch.setattr(processes, "TIMEOUT", 1.0)
    child = Child(SLEEPER)
    assert "within 1 s" in _fails_fast(lambda: child.expect_line("ready"))
