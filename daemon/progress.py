"""A worker's progress, watched from inside it: what the pool's stall guard reads.

A thread in each worker process wakes every BEAT_S and stamps two clocks the pool shares:
`beat` (the thread ran: the process is alive and its interpreter not held by a C call) and
`progress` (something moved since its last look). Progress is the work itself, not the
time spent on it: the read or write position of any regular file the worker has open
(the input; its outputs; the temp file or input a sink streams to its server, which reads
its next part only once the last one was taken), the lines through the pipeline, or a job
started. A server that drips one byte a second, a plugin asleep or spinning in a regex, a
hung NFS read: none of them move any of it.

When nothing moved for WHERE_AFTER_S, the thread names where the worker is from its
threads' stacks (the node whose batch runs, the sink delivering, the input being read,
results being committed, else the innermost function) and sends it once, and again only
when it changes. The pool decides what a silence means (`daemon.pool`).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from daemon import delivery, duplicates, worker
from formats.names import shown
from processors import nodes

BEAT_S = 0.5
WHERE_AFTER_S = 1.0
BEAT, PROGRESS = 0, 1  # the shared clocks (monotonic seconds), by index
STACK_BYTES = 512 << 10

_NODE_CODES = {nodes.LineRunner.run.__code__, nodes.BatchRunner.run.__code__,
               nodes.Runner.flush.__code__}  # fmt: skip
_READ_CODES = {worker._HashingReader.read.__code__, worker._HashingReader.readinto.__code__,
               duplicates.first_match.__code__}  # fmt: skip
_START_CODE = nodes.start_runner.__code__
_DELIVER_CODE = delivery.deliver.__code__
_COMMIT_CODE = worker.commit_outcomes.__code__
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def file_positions() -> int:
    """The sum of the offsets of every regular file this process opened (0 without /proc):
    it moves when any of them is read or written sequentially. Not stdin, stdout, stderr:
    inherited, they share their offset with the daemon (whose log may be a file)."""
    total = 0
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for name in fds:
        fd = int(name)
        if fd <= 2:
            continue
        with contextlib.suppress(OSError):  # closed since the listing: fine either way
            if stat.S_ISREG(os.fstat(fd).st_mode):
                total += os.lseek(fd, 0, os.SEEK_CUR)
    return total


def _named(frame: FrameType | None) -> str | None:
    """What the innermost frame we know of, from `frame` outwards, is doing."""
    while frame is not None:
        code = frame.f_code
        if code in _NODE_CODES:
            spec = getattr(frame.f_locals.get("self"), "spec", None)
            return f"in node {spec.name}" if spec is not None else "in a node"
        if code is _START_CODE:
            spec = frame.f_locals.get("spec")
            return f"starting node {spec.name}" if spec is not None else "starting a node"
        if code is _DELIVER_CODE:
            sink = frame.f_locals.get("sink")
            return f"in sink {sink.name}" if sink is not None else "delivering to the sinks"
        if code in _READ_CODES:
            return "reading the input"
        if code is _COMMIT_CODE:
            return "committing results"
        frame = frame.f_back
    return None


def _innermost(frame: FrameType) -> str:
    path = frame.f_code.co_filename
    if path.startswith(_ROOT + os.sep):
        path = os.path.relpath(path, _ROOT)
    return f"at {frame.f_code.co_qualname} ({shown(path)}:{frame.f_lineno})"


def where(exclude: int | None = None) -> str:
    """Where this process is: its main thread's work first, then its other threads'
    (the commit thread), else the main thread's innermost function."""
    frames = sys._current_frames()
    main = threading.main_thread().ident
    order = sorted(frames, key=lambda ident: ident != main)
    for ident in order:
        if ident != exclude and (found := _named(frames[ident])) is not None:
            return found
    frame = frames.get(main) if main is not None else None
    return _innermost(frame) if frame is not None else "unknown"


class ProgressWatch:
    """The thread that stamps `clocks` (shared with the pool) and reports where the worker
    is while nothing moves. `lines()` gives the lines through the pipeline so far."""

    def __init__(
        self, clocks: Any, send: Callable[[str, float], object], lines: Callable[[], int]
    ) -> None:
        self._clocks = clocks
        self._send = send
        self._lines = lines
        now = time.monotonic()
        clocks[BEAT] = clocks[PROGRESS] = now
        self._thread = threading.Thread(target=self._run, name="folderd-progress", daemon=True)

    def start(self) -> None:
        # A small stack: a thread's whole stack counts against the worker's heap cap
        # (RLIMIT_DATA), and this one only walks frames and reads /proc.
        before = threading.stack_size(STACK_BYTES)
        try:
            self._thread.start()
        finally:
            threading.stack_size(before)

    def moved(self) -> None:
        """Progress the worker reports itself (a job started)."""
        self._clocks[PROGRESS] = time.monotonic()

    def _run(self) -> None:
        clocks = self._clocks
        last: tuple[int, int] | None = None
        told: tuple[str, float] | None = None
        me = threading.get_ident()
        while True:
            time.sleep(BEAT_S)
            now = time.monotonic()
            clocks[BEAT] = now
            try:
                lines = self._lines()
            except Exception:  # a pipeline between states: no count this time
                lines = -1
            mark = (file_positions(), lines)
            if mark != last:
                last, told = mark, None
                clocks[PROGRESS] = now
                continue
            since = clocks[PROGRESS]
            if now - since < WHERE_AFTER_S:
                continue
            here = where(exclude=me)
            if (here, since) != told:
                told = (here, since)
                self._send(here, since)
