"""Repeated log events folded into one line per interval with a count.

A flood of bad connections must not become a flood of log lines: before this, a descriptor
shortage logged asyncio's accept traceback 136,000 times in 30 s (60 MB). The first event of
a kind in an interval is logged as it is; the rest of that interval are only counted, and
`flush()` (the dashboard server calls it ten times a second) logs one `log_repeated` line
with how many there were. So a kind that keeps happening costs two lines per interval.

`RepeatFilter` does the same for records of the stdlib loggers uvicorn and asyncio use
(`Invalid HTTP request received.`, `socket.accept() out of system resource`), keyed by
their message's first line: asyncio appends the socket's repr, which differs every time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

INTERVAL_S = 10.0
MAX_KINDS = 256  # beyond that many kinds at once, events are logged without folding


@dataclass
class _Window:
    what: str
    level: str
    started: float
    repeats: int = 0


class Digest:
    def __init__(
        self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()  # the stdlib filter may run on any thread
        self._windows: dict[Hashable, _Window] = {}

    def admit(self, key: Hashable, what: str, level: str = "warning") -> bool:
        """True for the first `key` of an interval (log it), False for the rest (counted)."""
        with self._lock:
            window = self._windows.get(key)
            if window is not None:
                window.repeats += 1
                return False
            if len(self._windows) < MAX_KINDS:
                self._windows[key] = _Window(what, level, self._clock())
            return True

    def log(self, logger: Any, level: str, event: str, key: Hashable = None, **fields: Any) -> None:
        """`logger.<level>(event, **fields)`, folded with the other `(event, key)` ones."""
        if self.admit((event, key), event, level):
            getattr(logger, level)(event, **fields)

    def flush(self, everything: bool = False) -> None:
        """Log the counts of intervals that have ended (all of them with `everything`)."""
        now = self._clock()
        with self._lock:
            ended = [
                key
                for key, w in self._windows.items()
                if everything or now - w.started >= self.interval_s
            ]
            windows = [self._windows.pop(key) for key in ended]
        for w in windows:
            if w.repeats:
                getattr(log, w.level)(
                    "log_repeated", what=w.what, count=w.repeats, seconds=round(now - w.started, 1)
                )


class RepeatFilter(logging.Filter):
    def __init__(self, digest: Digest) -> None:
        super().__init__()
        self.digest = digest

    def filter(self, record: logging.LogRecord) -> bool:
        first_line = str(record.msg).split("\n", 1)[0]
        what = f"{record.name}: {first_line}"
        return self.digest.admit(what, what, record.levelname.lower())
