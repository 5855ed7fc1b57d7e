"""The log digest in-process: a repeated event costs two lines per interval, with a count."""

from __future__ import annotations

import logging

import structlog
from structlog.testing import capture_logs

from dashboard.digest import Digest, RepeatFilter

log = structlog.get_logger(__name__)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_event_is_logged_once_per_interval_with_a_count() -> None:
    clock = Clock()
    digest = Digest(interval_s=10, clock=clock)
    with capture_logs() as logs:
        for _ in range(1000):
            digest.log(log, "warning", "connection_evicted", limit=5)
        digest.log(log, "info", "request_refused", key=400, path="/a")
        digest.log(log, "info", "request_refused", key=401, path="/b")  # another kind
        digest.flush()  # the interval has not ended: nothing yet
        clock.now += 10
        digest.flush()
        digest.flush()
        digest.log(log, "warning", "connection_evicted", limit=5)  # a new interval
        digest.flush(everything=True)  # the last one closes at once (the server stopping)
    assert logs == [
        {"event": "connection_evicted", "limit": 5, "log_level": "warning"},
        {"event": "request_refused", "path": "/a", "log_level": "info"},
        {"event": "request_refused", "path": "/b", "log_level": "info"},
        {"event": "log_repeated", "what": "connection_evicted", "count": 999, "seconds": 10.0,
         "log_level": "warning"},
        {"event": "connection_evicted", "limit": 5, "log_level": "warning"},
    ]  # fmt: skip


def test_stdlib_records_are_folded_by_their_first_line() -> None:
    clock = Clock()
    digest = Digest(interval_s=10, clock=clock)
    records = []
    logger = logging.getLogger("tests.digest.asyncio")
    logger.propagate = False
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.addFilter(RepeatFilter(digest))
    try:
        with capture_logs() as logs:
            for fd in range(500):  # asyncio appends the socket, different every time
                logger.error("socket.accept() out of system resource\nsocket: <fd=%d>", fd)
            logger.warning("Invalid HTTP request received.")
            clock.now += 10
            digest.flush()
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == [
        "socket.accept() out of system resource\nsocket: <fd=0>",
        "Invalid HTTP request received.",
    ]
    assert logs == [{
        "event": "log_repeated", "what": "tests.digest.asyncio: socket.accept() out of system "
        "resource", "count": 499, "seconds": 10.0, "log_level": "error"}]  # fmt: skip
