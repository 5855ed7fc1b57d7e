"""A worker process: its main loop, the pipeline it runs, its memory cap.

`worker_main` is what the pool spawns (`daemon.pool`): it loads the pipeline it is sent,
runs each job it is given (`daemon.worker.run`) and queues the outcome for its commit
thread (`daemon.worker.committer`), which sends it back. Workers ignore SIGINT/SIGTERM
(the daemon decides when they stop: a terminal's Ctrl-C or systemd's stop must not kill
in-flight files under it) and die with their parent (PR_SET_PDEATHSIG), so a `kill -9`'d
daemon leaves no orphan writing temp results. Each caps its own heap first
(`daemon.memory`), and runs a thread that stamps its progress (`daemon.progress`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from daemon import memory
from daemon.attempt import (
    FromWorker,
    Job,
    LoadConfig,
    Outcome,
    Progress,
    Ready,
    RunJob,
    Shared,
    Started,
    Status,
    Stop,
    ToWorker,
)
from daemon.progress import ProgressWatch, enable_dumps
from daemon.summary import Start
from daemon.worker.committer import Committer
from daemon.worker.run import process_file
from processors import LoadedPipeline

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_main(
    conn: Connection,
    parent_pid: int,
    init: Callable[[], None] | None = None,
    shared: Shared | None = None,
    memory_mb: int | None = None,
    stderr: Connection | None = None,
) -> None:
    """Entry point of a worker process: load the pipeline, then run jobs until told to stop.

    `init` (picklable) runs first: main.py passes its logging setup, which a spawned
    process does not inherit. `stderr`, if given, becomes this process's fd 2 (the pool
    forwards it and keeps its tail: a library's last words before it aborts). With
    `memory_mb`, the heap is capped (`daemon.memory`); after a job that hit the cap the
    process exits (EXIT_RECYCLE) once its outcomes are sent: whatever filled its memory
    may still hold it, and a fresh process takes the next file.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent()
    if os.getppid() != parent_pid:  # parent died before prctl took effect
        return
    if stderr is not None:
        os.dup2(stderr.fileno(), 2)
        stderr.close()
    enable_dumps()
    if memory_mb:
        memory.apply_cap(memory_mb)
    if init is not None:
        init()
    current = _Current()
    lock = threading.Lock()

    def send(msg: FromWorker) -> bool:
        with lock:
            try:
                conn.send(msg)
            except (OSError, ValueError):
                return False
        return True

    watch = None
    if shared is not None:
        watch = ProgressWatch(shared.clocks, shared.set_where, current.lines)
        watch.start()
    committer = Committer(send)
    send(Ready())  # only now: a worker that cannot start its threads (a cap too small) is
    # a start failure, backed off, never the death of the file it would have been given
    given = 0
    while True:
        try:
            msg: ToWorker = conn.recv()
        except (EOFError, OSError):
            return
        match msg:
            case Stop():
                committer.close()
                return
            case LoadConfig(loaded, trace):
                current.load(loaded, trace, memory_mb)
            case RunJob(job):
                given += 1
                if shared is not None and not shared.start(given):
                    continue  # taken back while it waited here (this worker was frozen)
                send(Started(job.uid))
                if watch is not None:
                    watch.moved()
                outcome = _run(send, job, current, memory_mb)
                if shared is not None:
                    shared.running.value = 0
                committer.put(job, outcome)
                if _error_type(outcome) == "MemoryLimit":
                    committer.close()
                    sys.exit(memory.EXIT_RECYCLE)  # flushed, and the pool starts a new one


class _Current:
    """The pipeline this worker runs (or why it has none)."""

    def __init__(self) -> None:
        self.pipeline: Any = None
        self.error: str | None = "no pipeline loaded"
        self.status = Status.RETRY  # of a job run without a pipeline
        self.cause: str | None = None

    def load(self, loaded: LoadedPipeline, trace: bool, memory_mb: int | None) -> None:
        """Build the pipeline (its plugins imported); why not is reported per job: a
        transient error, or, when the cap is too small for it, the machine's (no file
        can run here, so none is charged: the file is held and claiming pauses)."""
        self.status, self.cause = Status.RETRY, None
        try:
            self.pipeline, self.error = loaded.build(trace=trace), None
        except MemoryError as exc:
            self.pipeline, self.error = None, f"MemoryError: {exc}"
            if memory_mb:
                self.error = memory.too_small(memory_mb, "to load the pipeline")
                self.status, self.cause = Status.ENVIRONMENT, memory.TOO_SMALL
        except Exception as exc:
            self.pipeline, self.error = None, f"{type(exc).__name__}: {exc}"

    def lines(self) -> int:
        """Lines through the running file's pipeline so far (another thread asks)."""
        live = self.pipeline.live() if self.pipeline is not None else None
        return sum(live["tags"].values()) if live else 0


def _run(
    send: Callable[[FromWorker], bool], job: Job, current: _Current, memory_mb: int | None
) -> Outcome:
    pipeline = current.pipeline
    if pipeline is None:
        error = {"type": "ConfigError", "message": current.error}
        if current.cause is not None:
            error["cause"] = current.cause
        return Outcome(current.status, Start.of(job).failed(error))

    def on_read(n: int) -> None:
        send(Progress(job.uid, n, pipeline.live()))

    try:
        outcome = process_file(job, pipeline, on_read)
    except MemoryError:  # outside what process_file catches: no summary was written
        error = {"type": "MemoryError", "message": "out of memory"}
        outcome = Outcome(Status.RETRY, Start.of(job).failed(error))
    if memory_mb and _error_type(outcome) == "MemoryError":
        _over_cap(outcome, memory_mb)
    return outcome


def _error_type(outcome: Outcome) -> str | None:
    error = outcome.summary.error if outcome.summary is not None else None
    return error.get("type") if error else None


def _over_cap(outcome: Outcome, memory_mb: int) -> None:
    """An attempt that ran out of heap under the cap: transient (retried up to
    max_attempts, then failed with this reason), its results discarded."""
    if outcome.summary is None or outcome.summary.error is None:
        return
    error = outcome.summary.error
    outcome.summary = outcome.summary.with_error({
        "type": "MemoryLimit",
        "message": memory.limit_message(memory_mb),
        **{k: error[k] for k in ("processor", "tag", "line") if error.get(k) is not None},
    })  # fmt: skip
    for tmp, _ in outcome.temps:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    outcome.temps = []
    outcome.status = Status.RETRY
