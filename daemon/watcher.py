"""Watching unprocessed/ with watchdog, and turning its events into paths to settle.

Filtering happens here, in our own handler, on the path each event *ends* at: watchdog
7's PatternMatchingEventHandler drops a move if either path matches an ignore pattern,
which would lose rsync's final `.name.XXXXXX → name` rename. The watcher only reports;
the periodic rescan in the main loop is what guarantees nothing is missed (an inotify
queue overflow, which watchdog only logs, is counted here and triggers a rescan at once).
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
from watchdog.observers.polling import PollingObserver

log = structlog.get_logger(__name__)

# watchdog holds every unmatched IN_MOVED_FROM for `delay` (0.5 s) hoping to pair it, in a
# FIFO queue: every event behind it waits too. Each claim renames a file out of the
# watched tree (an unmatched IN_MOVED_FROM), so with the default every file arriving just
# after a claim waited an extra 0.5 s (measured: drop-to-processed p50 went from settle +
# 500 ms to settle + 10 ms). Pairing buys us nothing: an unpaired move reaches our handler
# as "gone" + "file", exactly what a paired one becomes. A pair arrives in one read anyway.
InotifyMoveEventGrouper.delay = 0.02

# (kind, path): kind is "file" (something changed at path), "closed" (a writer closed it),
# "gone" or "dir" (scan it).
Sink = Callable[[str, str], None]

_CHANGES = {"created", "modified", "attrib"}


def ignore_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """True for names never to claim: hidden (any path part) or matching a pattern."""
    globs = [p for p in patterns if p]
    rx = re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        if any(part.startswith(".") for part in parts):
            return True
        return bool(rx and rx.match(parts[-1]))

    return ignored


class _Handler(FileSystemEventHandler):
    def __init__(self, root: str, sink: Sink, ignored: Callable[[str], bool]) -> None:
        self._root = root.rstrip("/") + "/"
        self._sink = sink
        self._ignored = ignored

    def _emit(self, kind: str, path: str) -> None:
        if path.startswith(self._root) and not self._ignored(path[len(self._root) :]):
            self._sink(kind, path)

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        if event.is_directory:
            if kind in ("created", "moved"):
                self._emit("dir", os.fsdecode(event.dest_path) if kind == "moved" else src)
            return
        if kind == "moved":
            self._emit("gone", src)
            self._emit("file", os.fsdecode(event.dest_path))
        elif kind == "deleted":
            self._emit("gone", src)
        elif kind == "closed":  # IN_CLOSE_WRITE (inotify only)
            self._emit("closed", src)
        elif kind in _CHANGES:
            self._emit("file", src)


class _OverflowCounter(logging.Handler):
    """watchdog 7.1 reports an inotify queue overflow only as a log record."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._callback()


class Watcher:
    """An observer on `root` that can be health-checked and restarted."""

    def __init__(
        self,
        root: Path,
        sink: Sink,
        ignored: Callable[[str], bool],
        *,
        poll: bool = False,
        poll_interval: float = 1.0,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.root = root
        self.poll = poll
        self.poll_interval = poll_interval
        self.restarts = 0
        self.overflows = 0
        self._handler = _Handler(str(root), sink, ignored)
        self._on_overflow = on_overflow
        self._observer: Observer | PollingObserver | None = None
        self._overflow_log = _OverflowCounter(self._overflowed)
        logging.getLogger("watchdog.observers.inotify_c").addHandler(self._overflow_log)

    def _overflowed(self) -> None:
        self.overflows += 1
        log.warning("watcher_overflow", count=self.overflows, action="rescan")
        if self._on_overflow:
            self._on_overflow()

    @property
    def kind(self) -> str:
        return "polling" if self.poll else "inotify"

    def start(self) -> None:
        try:
            self._observer = self._start(self.poll)
        except OSError as exc:
            if self.poll or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            sysctl = (
                "fs.inotify.max_user_watches"
                if exc.errno == errno.ENOSPC
                else "fs.inotify.max_user_instances"
            )
            log.error(
                "inotify_limit",
                error=str(exc),
                hint=f"raise {sysctl} (sysctl -w {sysctl}=…); falling back to polling",
            )
            self.poll = True
            self._observer = self._start(True)
        log.info("watcher_started", path=str(self.root), kind=self.kind)

    def _start(self, poll: bool) -> Observer | PollingObserver:
        observer = PollingObserver(timeout=self.poll_interval) if poll else Observer()
        observer.daemon = True
        observer.schedule(self._handler, str(self.root), recursive=True)
        observer.start()
        return observer

    def alive(self) -> bool:
        obs = self._observer
        return bool(obs and obs.is_alive() and all(e.is_alive() for e in obs.emitters))

    def restart(self) -> None:
        """Replace a dead observer (the main loop checks `alive()` every tick)."""
        self.restarts += 1
        log.error("watcher_died", restarts=self.restarts, action="restart")
        self.stop()
        self.start()

    def stop(self) -> None:
        obs, self._observer = self._observer, None
        if obs is not None:
            try:
                obs.stop()
                obs.join(timeout=5.0)
            except Exception as exc:  # a dead observer may fail to stop; it is gone either way
                log.warning("watcher_stop_failed", error=str(exc))

    def close(self) -> None:
        self.stop()
        logging.getLogger("watchdog.observers.inotify_c").removeHandler(self._overflow_log)
