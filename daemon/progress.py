"""A worker's progress, watched from inside it: what the pool's stall guard reads.

A thread in each worker process wakes every BEAT_S and stamps two clocks the pool shares:
`beat` (the thread ran: the process is alive and its interpreter not held by a C call) and
`progress` (something moved since its last look). Progress is the work itself, not the
time spent on it: the read or write position of any regular file the worker has open
(the input; its outputs; the temp file or input a sink streams to its server, which reads
its next part only once the last one was taken), the lines through the pipeline, or a job
started. A server that drips one byte a second, a plugin asleep or spinning in a regex, a
hung NFS read: none of them move any of it.

At each beat the thread also writes where the worker is, from its threads' stacks (the
node whose batch runs, the sink delivering, the input being read, results being committed,
else the innermost function), to memory the pool reads: a worker stuck in a C call that
holds the interpreter lock starves this thread too: for that, faulthandler is set to dump
every thread's stack to stderr on SIGUSR1 (from C, without the lock), which the pool asks
for and reads (`where_from_dump`). The pool decides what a silence means (`daemon.pool`).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from daemon import delivery, duplicates
from daemon.worker import committer, run
from formats.names import shown
from processors import nodes

BEAT_S = 0.5
BEAT, PROGRESS = 0, 1  # the shared clocks (monotonic seconds), by index
DUMP_SIGNAL = signal.SIGUSR1  # a worker writes every thread's stack to stderr on it
STACK_BYTES = 512 << 10

_NODE_CODES = {nodes.LineRunner.run.__code__, nodes.BatchRunner.run.__code__,
               nodes.Runner.flush.__code__}  # fmt: skip
_READ_CODES = {run._HashingReader.read.__code__, run._HashingReader.readinto.__code__,
               duplicates.first_match.__code__}  # fmt: skip
_START_CODE = nodes.start_runner.__code__
_DELIVER_CODE = delivery.deliver.__code__
_COMMIT_CODE = committer.commit_outcomes.__code__
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY = tuple({os.path.dirname(os.__file__), os.path.dirname(contextlib.__file__)})
_DUMP_BLOCK = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\):\n"
                         r"((?:  File .*\n?)+)", re.M)  # fmt: skip
_DUMP_FRAME = re.compile(r'  File "(.*)", line (\d+) in (.+)')


def enable_dumps() -> None:
    """In the worker: fatal signals and DUMP_SIGNAL write every thread's stack to stderr."""
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True)


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


def _short(path: str) -> str:
    return shown(os.path.relpath(path, _ROOT) if path.startswith(_ROOT + os.sep) else path)


def _innermost(frame: FrameType) -> str:
    return f"at {frame.f_code.co_qualname} ({_short(frame.f_code.co_filename)}:{frame.f_lineno})"


def where_from_dump(text: str) -> str | None:
    """Where the worker's main thread was in the last stack dump in `text` (its stderr):
    the innermost function, and the innermost outside Python's own library if that is
    another (a plugin calling `re`), with what it was doing if our code says so."""
    mains = [b for b in _DUMP_BLOCK.findall(text) if " in worker_main" in b]
    if not mains:
        return None
    frames = [(path, int(line), func) for path, line, func in _DUMP_FRAME.findall(mains[-1])]
    if not frames:
        return None
    doing = ""
    for path, _, func in frames:
        here = _short(path)
        if here == "processors/nodes.py" and func in ("run", "flush"):
            doing = "in a node, "
        elif here == "daemon/delivery.py" and func == "deliver":
            doing = "in a sink, "
        elif here == "daemon/worker/run.py" and func in ("read", "readinto"):
            doing = "reading the input, "
        elif here == "daemon/worker/committer.py" and func == "commit_outcomes":
            doing = "committing results, "
        else:
            continue
        break
    path, line, func = frames[0]
    text = f"{doing}at {func} ({_short(path)}:{line})"
    own = next((f for f in frames if not f[0].startswith(_LIBRARY)), None)
    if own is not None and own != frames[0]:
        text += f" from {own[2]} ({_short(own[0])}:{own[1]})"
    return text


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
    """The thread that stamps `clocks` (shared with the pool) and writes where the worker
    is (`publish`). `lines()` gives the lines through the pipeline so far."""

    def __init__(
        self, clocks: Any, publish: Callable[[str], object], lines: Callable[[], int]
    ) -> None:
        self._clocks = clocks
        self._publish = publish
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
        told: str | None = None
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
                last = mark
                clocks[PROGRESS] = now
            here = where(exclude=me)
            if here != told:
                told = here
                self._publish(here)
