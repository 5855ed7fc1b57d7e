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
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
from watchdog.observers.inotify_c import InotifyConstants as IN
from watchdog.observers.inotify_c import InotifyFD, Mask
from watchdog.observers.inotify_move_event_grouper import (
    GroupedInotifyEvent,
    InotifyMoveEventGrouper,
    PathedInotifyEvent,
)
from watchdog.observers.polling import PollingObserver

log = structlog.get_logger(__name__)


class Change(StrEnum):
    CHANGED = "changed"  # something changed at the path: (re)start its settle window
    CLOSED = "closed"  # a writer closed it (IN_CLOSE_WRITE): its window may be shorter
    GONE = "gone"  # deleted, or moved away
    DIR = "dir"  # a directory appeared: scan it
    RENAMED = "renamed"  # renamed (moved) in: a file, or a directory of files, complete


@dataclass(frozen=True, slots=True)
class FileChange:
    """What the watcher reports: a change at an absolute path under the watched root."""

    change: Change
    path: str


OnChange = Callable[[FileChange], None]

_CHANGES = {"created", "modified", "attrib"}

# The events _Handler uses: the filter keeps the DirModifiedEvent watchdog adds to each
# file event out of its dispatch thread (half its dispatches; its threads share our GIL).
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileMovedEvent, FileDeletedEvent,
    FileClosedEvent, DirCreatedEvent, DirMovedEvent,
]  # fmt: skip


Ignored = Callable[[str], str | None]


def ignore_matcher(patterns: Iterable[str]) -> Ignored:
    """For names never to claim, why (a true value): hidden (any path part) or matching a
    pattern; None for every other name."""
    globs = [p for p in patterns if p]
    rx = re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None

    def ignored(rel: str) -> str | None:
        parts = rel.split("/")
        if any(part.startswith(".") for part in parts):
            return "hidden name: never claimed (rsync and editors write files in progress so)"
        if rx is not None and rx.match(parts[-1]):
            matched = next(g for g in globs if fnmatch.fnmatchcase(parts[-1], g))
            return f"matches --ignore-patterns {matched!r}: never claimed"
        return None

    return ignored


class _Handler(FileSystemEventHandler):
    def __init__(self, root: str, sink: OnChange, ignored: Ignored) -> None:
        self._root = root.rstrip("/") + "/"
        self._sink = sink
        self._ignored = ignored

    def _emit(self, change: Change, path: str) -> None:
        if path.startswith(self._root) and not self._ignored(path[len(self._root) :]):
            self._sink(FileChange(change, path))

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        if event.is_directory:
            if kind == "created":
                self._emit(Change.DIR, src)
            elif kind == "moved":
                self._emit(Change.RENAMED, os.fsdecode(event.dest_path))
            return
        if kind == "moved":
            self._emit(Change.GONE, src)
            self._emit(Change.RENAMED, os.fsdecode(event.dest_path))
        elif kind == "deleted":
            self._emit(Change.GONE, src)
        elif kind == "closed":  # IN_CLOSE_WRITE (inotify only)
            self._emit(Change.CLOSED, src)
        elif kind in _CHANGES:
            self._emit(Change.CHANGED, src)


# What the kernel reports to us. Not IN_MOVED_FROM: every claim renames a file out of the
# watched tree, so with it each file cost a second event while its burst was processed
# (read, held by watchdog's move grouper, dispatched, dropped by the loop as "gone"), all on
# the loop's GIL: measured, the daemon did ~1,700 files/s with it and ~2,700 without (2,000
# x 1 KiB, no fsync, bench/bench_daemon.py). Renames *into* the tree (IN_MOVED_TO: rsync's
# last step, `mv`) and deletes still arrive; a file someone moves or renames away before it
# settles is noticed gone at its settle check or claim and simply dropped. (A sub-folder
# moved out keeps its watch and reports under its old path: those paths stat as missing and
# are dropped the same way.)
_MASK = Mask(
    IN.IN_CREATE | IN.IN_MOVED_TO | IN.IN_MODIFY | IN.IN_ATTRIB | IN.IN_CLOSE_WRITE
    | IN.IN_DELETE | IN.IN_DELETE_SELF
)  # fmt: skip


class _UnpairedMoves(InotifyMoveEventGrouper):
    """With IN_MOVED_FROM masked out an IN_MOVED_TO never has a partner, but watchdog's
    grouper looks for one on every rename in, twice, by a Python scan of its whole queue
    of events not yet dispatched: in a burst that queue is long, so the scans grew with
    the square of the burst (measured: ~10% of the loop's GIL in a 3,000-file burst)."""

    def _group_moved_to_event(self, to_event: PathedInotifyEvent) -> GroupedInotifyEvent:
        return to_event

    def get_queued_moved_from_event(self, cookie: int) -> PathedInotifyEvent | None:
        return None


@dataclass
class _WatchGroup(InotifyWatchGroup):
    _move_event_grouper: InotifyMoveEventGrouper = field(default_factory=_UnpairedMoves, init=False)


class _Emitter(InotifyEmitter):
    def get_event_mask_from_filter(self) -> Mask:
        return _MASK

    def on_thread_start(self) -> None:  # watchdog's, with the watch group above
        self._inotify = _WatchGroup(
            self._inotify_fd, os.fsencode(self.watch.path), is_recursive=self.watch.is_recursive,
            event_mask=self.get_event_mask_from_filter(), follow_symlink=self.watch.follow_symlink,
        )  # fmt: skip

    def build_and_queue_event(
        self, event: GroupedInotifyEvent, *, full_events: bool = False
    ) -> None:
        # A rename into the tree (IN_MOVED_TO, its IN_MOVED_FROM masked out) would become a
        # "created" event: report it as a move from nowhere, since a file renamed in is
        # complete. A directory renamed in is scanned by intake; no sub-events for it.
        if isinstance(event, PathedInotifyEvent) and event.ev.is_moved_to:
            moved = DirMovedEvent if event.ev.is_directory else FileMovedEvent
            self.queue_event(moved("", os.fsdecode(event.path)))
            return
        super().build_and_queue_event(event, full_events=full_events)


class _InotifyObserver(BaseObserver):
    """watchdog's InotifyObserver, with our inotify mask."""

    def __init__(self) -> None:
        self._inotify_fd = InotifyFD()
        self._inotify_fd.start()
        super().__init__(_Emitter, inotify_fd=self._inotify_fd)

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._inotify_fd.stop()
        self._inotify_fd.join()


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
        sink: OnChange,
        ignored: Ignored,
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
        self._observer: BaseObserver | None = None
        self._watched: tuple[int, int] | None = None  # (st_dev, st_ino) of the root watched
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

    def _start(self, poll: bool) -> BaseObserver:
        st = os.stat(self.root)
        self._watched = (st.st_dev, st.st_ino)
        observer = PollingObserver(timeout=self.poll_interval) if poll else _InotifyObserver()
        observer.daemon = True
        observer.schedule(self._handler, str(self.root), recursive=True, event_filter=_EVENTS)
        observer.start()
        return observer

    def alive(self) -> bool:
        obs = self._observer
        return bool(obs and obs.is_alive() and all(e.is_alive() for e in obs.emitters))

    def moved(self) -> bool:
        """Whether the folder watched is no longer at `root` (moved away, deleted, or
        replaced): an observer follows the folder it watches, wherever it went, and would
        never see what lands in a new `root`."""
        try:
            st = os.stat(self.root)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._watched

    def restart(self) -> None:
        """Replace a dead observer, or one watching a folder that left `root` (the main
        loop checks `alive()` and `moved()` every tick)."""
        self.restarts += 1
        if self.alive():  # alive, so it was moved(): it still watches the folder it had
            log.warning("watcher_moved", path=str(self.root), restarts=self.restarts,
                        action="watching the folder now at its path")  # fmt: skip
        else:
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
