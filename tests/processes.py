"""Child processes started by tests (servers, `points` commands, reconcilers), every wait bounded.

One setting bounds each wait on a child: POINTS_TEST_TIMEOUT, in seconds (default 180, generous
for a loaded 2-core machine). When a wait runs out, the child is killed first, then its output
is collected and the test fails with it. Output is read by threads as the child writes it, so
no test ever blocks reading a live child's pipe. Children still running when their test ends
are killed (see `kill_all`, called after every test by tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

import pytest

TIMEOUT = float(os.environ.get("POINTS_TEST_TIMEOUT", "180"))

_live: list[Child] = []


def _seconds(timeout: float | None) -> float:
    return TIMEOUT if timeout is None else timeout


def _unbuffered(kwargs: dict) -> dict:
    # A Python child writes each line as it goes, so a killed child has shown all it printed.
    return {**kwargs, "env": {**(kwargs.get("env") or os.environ), "PYTHONUNBUFFERED": "1"}}


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def report(why: str, args: Sequence[str], returncode, stdout, stderr) -> str:
    return (
        f"{why}\ncommand: {shlex.join(map(str, args))}\nexit code: {returncode}\n"
        f"--- stdout ---\n{_text(stdout)}\n--- stderr ---\n{_text(stderr)}"
    )


def run(args: Sequence[str], *, timeout: float | None = None, **kwargs):
    """subprocess.run with output captured (as text unless text=False); a child still running
    at the timeout is killed and the test fails with what it printed."""
    seconds = _seconds(timeout)
    kwargs.setdefault("text", True)
    try:  # on timeout, run() kills the child before raising
        return subprocess.run(args, capture_output=True, timeout=seconds, **_unbuffered(kwargs))
    except subprocess.TimeoutExpired as e:
        why = f"did not finish within {seconds:g} s (POINTS_TEST_TIMEOUT)"
        pytest.fail(report(why, args, "killed", e.stdout, e.stderr), pytrace=False)


def points(db_url: str, *args: str, timeout: float | None = None, **env):
    """Run the `points` command on `db_url`, as an operator would."""
    return run(
        [sys.executable, "-m", "api.cli", *args],
        env=dict(os.environ, POINTS_DATABASE_URL=db_url, **env),
        timeout=timeout,
    )


class Child:
    """A started child process. Its stdout and stderr are read by threads as it writes them, so
    `stdout`/`stderr` never block; every wait is bounded and fails the test with the output."""

    def __init__(
        self, args: Sequence[str], *, stdin: bool = False, merge_stderr: bool = False, **popen
    ):
        self.args = [str(a) for a in args]
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            **_unbuffered(popen),
        )
        _live.append(self)
        self._out: list[str] = []
        self._err: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._readers = [self._reader(self.proc.stdout, self._out, self._lines)]
        if not merge_stderr:
            self._readers.append(self._reader(self.proc.stderr, self._err, None))

    @staticmethod
    def _reader(pipe, sink: list[str], lines: queue.Queue | None) -> threading.Thread:
        def read() -> None:
            for line in pipe:
                sink.append(line)
                if lines is not None:
                    lines.put(line)
            if lines is not None:
                lines.put(None)  # end of output

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def stdout(self) -> str:
        """What the child printed so far (with stderr, if merged)."""
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def send(self, text: str) -> None:
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def expect_line(self, text: str, *, timeout: float | None = None) -> None:
        """Wait until the child prints a line equal to `text` (stripped)."""
        seconds = _seconds(timeout)
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.fail(f"did not print {text!r} within {seconds:g} s (POINTS_TEST_TIMEOUT)")
            if line is None:
                self.finish()
                self.fail(f"exited before printing {text!r}")
            if line.strip() == text:
                return

    def wait_until(
        self,
        ready: Callable[[], bool],
        what: str,
        *,
        timeout: float | None = None,
        every: float = 0.2,
    ) -> None:
        """Poll `ready()` until it is true; fail if the child exits or the time runs out first."""
        seconds = _seconds(timeout)
        deadline = time.monotonic() + seconds
        while not ready():
            if self.proc.poll() is not None:
                self.finish()
                self.fail(f"exited before {what}")
            if time.monotonic() > deadline:
                self.fail(f"not {what} within {seconds:g} s (POINTS_TEST_TIMEOUT)")
            time.sleep(every)

    def finish(self, *, timeout: float | None = None) -> int:
        """Wait for the child to exit (by itself, or as told); return its exit code."""
        seconds = _seconds(timeout)
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.fail(f"did not exit within {seconds:g} s (POINTS_TEST_TIMEOUT)")
        self._join()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the child if it still runs, and collect what it printed."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # a SIGKILLed child dies at once
            self.proc.wait(timeout=10)
        self._join()

    def _join(self) -> None:
        # A grandchild could keep a pipe open: never wait on the readers for long.
        for thread, pipe in zip(self._readers, (self.proc.stdout, self.proc.stderr), strict=False):
            thread.join(timeout=5)
            if not thread.is_alive():
                pipe.close()
        if self.proc.stdin:
            with contextlib.suppress(OSError):  # the child is gone, and so is the pipe
                self.proc.stdin.close()

    def fail(self, why: str):
        """Kill the child, then fail the test with `why` and everything it printed."""
        self.kill()
        code = self.proc.returncode
        returncode = "killed" if code == -signal.SIGKILL else code
        pytest.fail(report(why, self.args, returncode, self.stdout, self.stderr), pytrace=False)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def kill_all() -> None:
    """Kill every child still running (a test that failed or forgot to wait for one)."""
    while _live:
        _live.pop().kill()
