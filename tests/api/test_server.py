"""The WSGI server `points serve` runs (api.server): waitress whose main loop does not spin
while task threads write their responses, and which still delivers every byte."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
from waitress import wasyncore

from api.server import QuietChannel, create

WAIT = 30  # seconds: the bound on every wait below; nothing here should come near it


class Served:
    """A server from `api.server.create` on a free port, its main loop in a thread that counts
    the loop's polls."""

    def __init__(self, app, threads: int = 8):
        self.server = create(app, host="127.0.0.1", port=0, threads=threads)
        self.port = self.server.effective_port
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        # waitress's own loop (`wasyncore.loop`) one poll at a time, so that the test can count
        # the polls and stop the loop
        while not self._stop.is_set():
            wasyncore.poll(0.05, self.server._map)
            self.polls += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(WAIT)
        self.server.task_dispatcher.shutdown(timeout=WAIT)
        for dispatcher in list(self.server._map.values()):
            dispatcher.close()


def _channel(requests, pending, *, will_close=False, close_when_flushed=False):
    channel = QuietChannel.__new__(QuietChannel)  # no socket: writable() reads only these
    channel.requests, channel.total_outbufs_len = requests, pending
    channel.will_close, channel.close_when_flushed = will_close, close_when_flushed
    channel.outbuf_lock = threading.Condition()  # as HTTPChannel makes it
    return channel


class _Holding:
    """Another thread holds the channel's output lock (as a task thread does while sending)."""

    def __init__(self, channel):
        self.lock, self.taken, self.done = channel.outbuf_lock, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self):
        with self.lock:
            self.taken.set()
            self.done.wait(WAIT)

    def __enter__(self):
        self.thread.start()
        assert self.taken.wait(WAIT)

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(WAIT)


def test_a_connection_is_not_polled_for_writing_while_its_task_thread_sends():
    # The state the main loop spun on: a task's response bytes appended and being sent by its
    # own thread, which holds the output lock.
    sending = _channel(["request"], 131)
    with _Holding(sending):
        assert not sending.writable()
    assert sending.writable()  # the lock is free: bytes left unsent are the main loop's

    # Otherwise as waitress polls it: bytes pending or closing means writable.
    assert not _channel(["request"], 0).writable()
    assert not _channel([], 0).writable()
    assert _channel([], 131).writable()
    closing = _channel(["request"], 131, will_close=True)
    with _Holding(closing):
        assert closing.writable()
    assert _channel(["request"], 0, close_when_flushed=True).writable()


def _busy_app(environ, start_response):
    """A response written in two pieces with Python work between them: task threads hand the
    GIL back and forth while their output is in flight."""
    size = int(environ.get("QUERY_STRING") or 2000)
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"head:"
        total = 0
        for i in range(size):
            total += i * i
        yield str(total).encode()

    return body()


def test_concurrent_clients_are_all_answered_through_quiet_channels():
    # That QuietChannel does not break serving (every answer whole and in order, the loop
    # woken a bounded number of times). The spin itself depends on thread timing this test
    # does not reproduce (waitress's own channel passes it too); the state it spun on is
    # checked directly above.
    clients, per_client = 16, 25
    answers: list[bytes] = []
    failures: list[BaseException] = []

    def client(port):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
            for _ in range(per_client):
                conn.request("GET", "/?2000")
                response = conn.getresponse()
                answers.append(response.read())
            conn.close()
        except BaseException as error:  # reported below, never lost in the thread
            failures.append(error)

    with Served(_busy_app) as served:
        workers = [threading.Thread(target=client, args=(served.port,)) for _ in range(clients)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT)
        polls = served.polls

    assert not failures
    expected = b"head:" + str(sum(i * i for i in range(2000))).encode()
    assert answers == [expected] * (clients * per_client)
    # Each poll wakes for a new request, a finished task (waitress's trigger) or a closing
    # connection.
    assert polls <= 10 * clients * per_client, polls


def _large_app(environ, start_response):
    mib = int(environ.get("QUERY_STRING") or 1)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (bytes([n % 251]) * (1024 * 1024) for n in range(mib))


@pytest.mark.parametrize("mib", [3, 20])  # 20 MiB: over waitress's 16 MiB high watermark
def test_a_large_response_to_a_slow_reader_arrives_whole(mib):
    with Served(_large_app, threads=2) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=WAIT)
        conn.request("GET", f"/?{mib}")
        response = conn.getresponse()
        time.sleep(0.5)  # the task fills the socket's buffers; the rest waits in waitress
        received = bytearray()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            chunk = response.read(256 * 1024)
            if not chunk:
                break
            received += chunk
        conn.close()
    assert len(received) == mib * 1024 * 1024
    assert all(received[n * 1024 * 1024] == n % 251 for n in range(mib))
    assert all(received[(n + 1) * 1024 * 1024 - 1] == n % 251 for n in range(mib))


def test_the_queue_depth_warning_is_written_once_a_minute_with_what_it_held_back(caplog):
    # Waitress warns each time a request waits for a thread: at 16 clients on 8 threads, a
    # line per request. One per minute says the same.
    from waitress.task import ThreadedTaskDispatcher

    from api.server import QueueDepthLog

    now = [1000.0]
    dispatcher = ThreadedTaskDispatcher()  # no threads: every task waits in the queue
    dispatcher.queue_logger = QueueDepthLog(
        ThreadedTaskDispatcher.queue_logger, clock=lambda: now[0]
    )
    with caplog.at_level("WARNING", logger="waitress.queue"):
        for _ in range(50):
            dispatcher.add_task(object())
        assert [r.getMessage() for r in caplog.records] == ["Task queue depth is 1"]
        now[0] += 61
        dispatcher.add_task(object())
    assert caplog.records[-1].getMessage() == (
        "Task queue depth is 51 (49 such warnings held back since the last one)"
    )
    assert len(caplog.records) == 2


def test_points_serve_throttles_waitress_queue_warnings(app):
    from api.server import QueueDepthLog

    server = create(app, host="127.0.0.1", port=0, threads=2)
    try:
        assert isinstance(server.task_dispatcher.queue_logger, QueueDepthLog)
        assert server.task_dispatcher.queue_logger.logger.name == "waitress.queue"
    finally:
        server.task_dispatcher.shutdown(timeout=WAIT)
        for dispatcher in list(server._map.values()):
            dispatcher.close()
