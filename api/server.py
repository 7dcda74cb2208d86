"""The WSGI server `points serve` runs: waitress, with its main loop kept from spinning
(docs/decisions/0033-waitress-main-loop.md).

Waitress's main thread polls every connection, for writing while any response bytes sit in its
output buffer. With `send_bytes=1` (waitress 3's default) a task thread flushes what it writes
itself, holding the connection's output lock: it appends, calls `send` (which lets go of the
GIL) and then needs the GIL back to count what was sent. In that window the socket is
writable, so the main loop wakes at once, cannot take the lock, and polls again: tens of
thousands of polls a second, a whole core burnt, and the GIL so busy that the task thread waits
longer still for it (measured: a one-INSERT endpoint fell from ~700 to ~130 requests a second at
16 clients, the main thread using 6.5 s of CPU in 8 s; a server fell into that state at some
starts and not others).

`QuietChannel` is not polled for writing while a task thread holds its output lock: that thread
is sending, and it wakes the main loop (waitress's trigger) when it leaves bytes unsent or
waits for the buffer to drain. In every other state it is polled as waitress polls it.

Waitress also warns "Task queue depth is N" each time a request arrives while every thread is
busy: at a village's busiest hour that is one log line per request (measured: 3-5 % of the
server's time at 16 clients). `QueueDepthLog` passes the first warning of each minute on,
with how many it held back.
"""

from __future__ import annotations

import logging
import time

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server


class QuietChannel(HTTPChannel):
    """An HTTP channel that is not polled for writing while its task thread is sending."""

    def writable(self):
        if not super().writable():
            return False
        if self.will_close or self.close_when_flushed:
            return True
        # Free unless a task thread is inside write_soon (sending) or send_continue; a task
        # waiting for the buffer to drain waits on this condition, which frees the lock.
        if self.outbuf_lock.acquire(blocking=False):
            self.outbuf_lock.release()
            return True
        return False


class QueueDepthLog:
    """Waitress's queue-depth warnings (its dispatcher's `queue_logger`), at most one every
    `every` seconds; the next one says how many were held back. Called under the dispatcher's
    lock, as waitress calls its logger."""

    def __init__(self, logger: logging.Logger, every: float = 60.0, clock=time.monotonic):
        self.logger, self.every, self.clock = logger, every, clock
        self.next_at = float("-inf")
        self.held = 0

    def warning(self, message: str, *args) -> None:
        now = self.clock()
        if now < self.next_at:
            self.held += 1
            return
        self.next_at = now + self.every
        if self.held:
            message += " (%d such warnings held back since the last one)"
            args = (*args, self.held)
            self.held = 0
        self.logger.warning(message, *args)


def create(app, **adjustments):
    """`waitress.create_server(app, **adjustments)` with `QuietChannel` connections and
    queue-depth warnings at most once a minute."""
    sockets: dict = {}
    server = create_server(app, map=sockets, **adjustments)
    dispatcher = server.task_dispatcher
    dispatcher.queue_logger = QueueDepthLog(dispatcher.queue_logger)
    for listener in list(sockets.values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = QuietChannel
    return server


def serve(app, **adjustments) -> None:
    """Serve `app` until interrupted, as `waitress.serve` does, on `QuietChannel` connections."""
    logging.basicConfig()  # waitress logs through `logging`; idempotent
    server = create(app, **adjustments)
    server.print_listen("Serving on http://{}:{}")
    server.run()
