"""A pool of worker processes, one file at a time each.

Unlike `concurrent.futures.ProcessPoolExecutor` (whose whole pool breaks, failing every
pending future, when one worker dies), each slot here is one process with its own pipe,
so a death (segfault, OOM kill) is charged to exactly the file that slot was running;
the slot gets a new process and the others never notice.

Workers ignore SIGINT/SIGTERM (the daemon decides when they stop: a terminal's Ctrl-C
or systemd's stop must not kill in-flight files under it) and die with their parent
(PR_SET_PDEATHSIG), so a `kill -9`'d daemon leaves no orphan writing temp results.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import psutil
import structlog

from daemon.snapshot import InFlight
from daemon.worker import (
    Job,
    Outcome,
    Status,
    base_summary,
    commit_outcomes,
    error_info,
    finish_summary,
    process_file,
)
from processors import LoadedPipeline

log = structlog.get_logger(__name__)


# What goes down a worker's pipe, each way.
@dataclass(frozen=True, slots=True)
class LoadConfig:
    """Use this pipeline for the jobs that follow."""

    pipeline: LoadedPipeline
    trace: bool


@dataclass(frozen=True, slots=True)
class RunJob:
    job: Job


@dataclass(frozen=True, slots=True)
class Stop:
    """Finish: the pool is closing."""


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker started: from now on a death is its file's, not the start-up's."""


@dataclass(frozen=True, slots=True)
class Progress:
    """A running job's bytes read, and its pipeline counts so far (`Pipeline.live`)."""

    uid: str
    bytes_read: int
    counts: dict[str, Any] | None = None


ToWorker = LoadConfig | RunJob | Stop
FromWorker = Ready | Progress | Outcome

_CTX = multiprocessing.get_context("spawn")  # safe with the daemon's threads; forks nothing
_PR_SET_PDEATHSIG = 1
_STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_main(
    conn: Connection,
    parent_pid: int,
    init: Callable[[], None] | None = None,
    running: Any = None,
) -> None:
    """Entry point of a worker process: load the pipeline, then run jobs until told to stop.

    `init` (picklable) runs first: main.py passes its logging setup, which a spawned
    process does not inherit. `running` (a shared integer) says which of the jobs this
    process was given (1, 2, …) its pipeline is running, 0 while none: if the process
    dies, the pool charges that job, not one already finished and waiting to commit.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent_pid:  # parent died before prctl took effect
        return
    if init is not None:
        init()
    pipeline = None
    config_error: str | None = None
    lock = threading.Lock()

    def send(msg: FromWorker) -> bool:
        with lock:
            try:
                conn.send(msg)
            except (OSError, ValueError):
                return False
        return True

    send(Ready())
    committer = _Committer(send)
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
                try:
                    pipeline, config_error = loaded.build(trace=trace), None
                except Exception as exc:  # reported per job, as a transient error
                    pipeline, config_error = None, f"{type(exc).__name__}: {exc}"
            case RunJob(job):
                given += 1
                if running is not None:
                    running.value = given
                outcome = _run(send, job, pipeline, config_error)
                if running is not None:
                    running.value = 0
                committer.put(job, outcome)


def _run(
    send: Callable[[FromWorker], bool], job: Job, pipeline: Any, config_error: str | None
) -> Outcome:
    if pipeline is None:
        summary = base_summary(job, time.time())
        summary["error"] = {"type": "ConfigError", "message": config_error}
        return Outcome(Status.RETRY, finish_summary(summary, Status.FAILED, time.time()))

    def progress(n: int) -> None:
        send(Progress(job.uid, n, pipeline.live()))

    return process_file(job, pipeline, progress)


class _Committer:
    """A worker's commit thread: group commit. The worker's main thread runs the pipeline
    and queues each finished attempt here; this thread commits everything queued as one
    group (`commit_outcomes`: one round of syncs for all of them) and sends the outcomes
    back in order. While it waits on one group's syncs the main thread runs the next
    file, which joins the next group: in a burst files share their syncs, and a lone file
    is committed as soon as it is finished, never held back waiting for company."""

    def __init__(self, send: Callable[[FromWorker], bool]) -> None:
        self._send = send
        self._queue: list[tuple[Job, Outcome]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="folderd-commit", daemon=True)
        self._thread.start()

    def put(self, job: Job, outcome: Outcome) -> None:
        with self._cond:
            self._queue.append((job, outcome))
            self._cond.notify()

    def close(self) -> None:
        """Commit and send what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                group, self._queue = self._queue, []
            if not group:
                return
            commit_outcomes(group)
            for _, outcome in group:
                if not self._send(outcome):
                    return  # the daemon is gone


PREFETCH = 2  # jobs a worker holds: the one it runs and the next, so it never waits for us
# A worker whose last file took under QUICK_S, holding only files of at most SMALL_BYTES,
# may hold up to DEEP: in a burst of small files its commit thread then has several
# finished files to sync as one group (`_Committer`), and no file waits behind a big one.
DEEP = 8
SMALL_BYTES = 1 << 20
QUICK_S = 0.02


@dataclass
class Slot:
    index: int
    proc: Any = None
    conn: Connection | None = None
    # in the order given: finished ones waiting for their commit, the one running, queued
    jobs: deque[Job] = field(default_factory=deque)
    started: float = 0.0  # when jobs[0] started, or its predecessor's outcome came back
    running: Any = None  # shared with the process: which of its jobs it runs (worker_main)
    answered: int = 0  # outcomes this process sent back: jobs[0] was its job answered + 1
    quick: bool = False  # its last file took under QUICK_S (it may hold up to DEEP)
    bytes_read: int = 0
    config_gen: int = -1
    ready: bool = False  # the process said it started; only then does it get jobs
    respawn_at: float | None = None  # no process: start one at this monotonic time

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def job(self) -> Job | None:
        """The job this worker is running now."""
        return self.jobs[0] if self.jobs else None


class WorkerPool:
    def __init__(
        self,
        size: int,
        pipeline: LoadedPipeline,
        trace: bool = False,
        on_progress: Callable[[Job, Progress], None] | None = None,
        worker_init: Callable[[], None] | None = None,
    ) -> None:
        self.slots = [Slot(i) for i in range(size)]
        self._on_progress = on_progress
        self._worker_init = worker_init
        self._start_failures = 0  # workers in a row that died before saying they started
        self._pipeline = pipeline
        self._trace = trace
        self._gen = 0
        self.deaths = 0
        self.frozen: tuple[int, ...] = ()  # pids of workers the kernel has stopped

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        parent, child = _CTX.Pipe(duplex=True)
        running = _CTX.RawValue("q", 0)
        proc = _CTX.Process(
            target=worker_main,
            args=(child, os.getpid(), self._worker_init, running),
            name=f"folderd-worker-{slot.index}",
            daemon=True,
        )
        proc.start()
        child.close()
        slot.proc, slot.conn, slot.config_gen = proc, parent, -1
        slot.running, slot.answered, slot.quick = running, 0, False
        slot.ready, slot.respawn_at = False, None
        slot.jobs.clear()
        log.debug("worker_started", slot=slot.index, pid=proc.pid)

    def set_config(self, pipeline: LoadedPipeline) -> None:
        """Use `pipeline` for each job dispatched from now on (a slot reloads before its next
        job)."""
        self._pipeline, self._gen = pipeline, self._gen + 1

    def close(self, timeout: float = 5.0) -> None:
        for slot in self.slots:
            if slot.conn is not None:
                with contextlib.suppress(OSError, ValueError):
                    slot.conn.send(Stop())
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.proc is None:
                continue
            slot.proc.join(max(0.0, deadline - time.monotonic()))
            if slot.proc.is_alive():
                log.warning("worker_kill", slot=slot.index, pid=slot.proc.pid, reason="timeout")
                slot.proc.kill()
                slot.proc.join(1.0)
            if slot.conn is not None:
                slot.conn.close()
            slot.proc = slot.conn = None

    # -- dispatch --------------------------------------------------------------
    def maintain(self) -> None:
        """Start the workers whose respawn back-off has passed (the loop calls this)."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.proc is None and slot.respawn_at is not None and slot.respawn_at <= now:
                self._spawn(slot)

    def _live(self) -> list[Slot]:
        frozen = self.frozen
        return [s for s in self.slots if s.proc is not None and s.ready and s.pid not in frozen]

    def _takes(self, slot: Slot, held: int) -> bool:
        """Whether `slot`, holding `held` jobs, may take one more."""
        if held < PREFETCH:
            return True
        return held < DEEP and slot.quick and all(j.size <= SMALL_BYTES for j in slot.jobs)

    def free(self) -> list[Slot]:
        """One entry per job the workers can take now, round-robin, emptiest first."""
        live = self._live()
        return [s for level in range(DEEP) for s in live
                if len(s.jobs) <= level and self._takes(s, level)]  # fmt: skip

    def next_free(self) -> Slot | None:
        """The worker to give the next job to: the emptiest that may take one, if any."""
        return min((s for s in self._live() if self._takes(s, len(s.jobs))),
                   key=lambda s: len(s.jobs), default=None)  # fmt: skip

    def in_flight(self) -> tuple[InFlight, ...]:
        """The job each busy worker is running now."""
        return tuple(
            InFlight(
                s.job.uid, s.job.rel, s.job.attempt, s.pid, s.started, s.bytes_read, s.job.size
            )
            for s in self.slots
            if s.job is not None
        )

    def busy(self) -> list[Slot]:
        return [s for s in self.slots if s.jobs]

    def check_frozen(self) -> None:
        """Once a tick: note the workers the kernel has stopped (SIGSTOP, a debugger). They
        get no more jobs (the others carry the queue), /health names them, and what they
        hold resumes when they are continued: nothing is lost or failed for it."""
        frozen = []
        for s in self.slots:
            if s.proc is None:
                continue
            with contextlib.suppress(psutil.Error):
                if psutil.Process(s.proc.pid).status() in _STOPPED:
                    frozen.append(s.proc.pid)
        if tuple(frozen) != self.frozen:
            if frozen:
                log.warning("workers_frozen", pids=frozen, action="no more jobs until continued")
            else:
                log.info("workers_thawed", pids=list(self.frozen))
            self.frozen = tuple(frozen)

    def alive_count(self) -> int:
        """Workers with a process (a dead one is replaced, or backing off, by the time the
        loop has collected its sentinel)."""
        return sum(s.proc is not None for s in self.slots)

    def submit(self, slot: Slot, job: Job) -> bool:
        """Hand `job` to `slot`'s worker; False if the worker is gone (the job never started:
        the caller keeps it; the death is handled when its sentinel fires)."""
        if slot.conn is None:
            return False
        try:
            if slot.config_gen != self._gen:
                slot.conn.send(LoadConfig(self._pipeline, self._trace))
                slot.config_gen = self._gen
            slot.conn.send(RunJob(job))
        except (OSError, ValueError):
            slot.ready = False
            return False
        if not slot.jobs:
            slot.started, slot.bytes_read = time.monotonic(), 0
        slot.jobs.append(job)
        return True

    def handles(self) -> list[Any]:
        """What the main loop waits on: each worker's pipe and its process sentinel."""
        out: list[Any] = []
        for s in self.slots:
            if s.proc is not None and s.conn is not None:
                out += [s.conn, s.proc.sentinel]
        return out

    def collect(self, ready: list[Any]) -> list[tuple[Job, Outcome]]:
        """Outcomes for the handles the loop's wait reported ready; dead workers replaced."""
        done: list[tuple[Job, Outcome]] = []
        ready_set = set(map(id, ready))
        for slot in self.slots:
            if slot.proc is None or slot.conn is None:
                continue
            finished = False
            while not finished and slot.conn.poll():
                try:
                    msg: FromWorker = slot.conn.recv()
                except (EOFError, OSError):
                    break  # the worker died mid-message: handled as a death below
                match msg:
                    case Ready():
                        slot.ready, self._start_failures = True, 0
                    case Progress(uid, bytes_read):
                        job = next((j for j in slot.jobs if j.uid == uid), None)
                        if job is not None and job is slot.job:
                            slot.bytes_read = bytes_read
                        if self._on_progress is not None and job is not None:
                            self._on_progress(job, msg)
                    case Outcome() if slot.jobs:
                        done.append((slot.jobs.popleft(), msg))
                        slot.answered += 1
                        slot.quick = msg.summary.get("duration_s", QUICK_S) < QUICK_S
                        slot.started, slot.bytes_read = time.monotonic(), 0
                        finished = not slot.jobs
            if finished:
                continue
            if id(slot.proc.sentinel) in ready_set or not slot.proc.is_alive():
                slot.proc.join(0.5)
                if slot.proc.is_alive():
                    continue
                done += self._replace_dead(slot)
        return done

    def _replace_dead(self, slot: Slot) -> list[tuple[Job, Outcome]]:
        code = slot.proc.exitcode
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        self.deaths += 1
        done: list[tuple[Job, Outcome]] = []
        if not slot.ready:  # died starting up: no job was given to it; back off, don't spin
            self._start_failures += 1
            delay = min(0.5 * 2 ** (self._start_failures - 1), 30.0)
            log.error("worker_start_failed", slot=slot.index, pid=slot.proc.pid, exit=why,
                      failures_in_a_row=self._start_failures, retry_in_s=delay)  # fmt: skip
            with contextlib.suppress(OSError):
                slot.conn.close()  # type: ignore[union-attr]
            slot.proc = slot.conn = None
            slot.respawn_at = time.monotonic() + delay
            return done
        if slot.jobs:
            # the death is the file whose pipeline was running (else the oldest's, being
            # committed); the others, queued or finished but not committed, run again
            running = slot.running.value if slot.running is not None else 0
            at = running - slot.answered - 1 if running else 0
            job = slot.jobs[at if 0 <= at < len(slot.jobs) else 0]
            log.warning("worker_died", slot=slot.index, pid=slot.proc.pid, exit=why, path=job.rel)
            summary = base_summary(job, time.time())
            summary["error"] = error_info(ChildProcessError(f"worker process died ({why})"))
            outcome = Outcome(Status.RETRY, finish_summary(summary, Status.FAILED, time.time()))
            for other in slot.jobs:  # not charged an attempt
                done.append((other, outcome if other is job else Outcome(Status.UNSTARTED, {})))
            slot.jobs.clear()
        else:
            log.warning("worker_died", slot=slot.index, pid=slot.proc.pid, exit=why)
        with contextlib.suppress(OSError):
            slot.conn.close()  # type: ignore[union-attr]
        self._spawn(slot)
        return done

    def kill_busy(self) -> list[Job]:
        """Cold stop: kill the workers still holding jobs; return those jobs."""
        jobs: list[Job] = []
        for slot in self.busy():
            assert slot.job is not None  # busy: it holds one
            log.warning(
                "worker_kill",
                slot=slot.index,
                pid=slot.pid,
                path=slot.job.rel,
                reason="shutdown timeout",
            )
            slot.proc.kill()
            slot.proc.join(2.0)
            jobs.extend(slot.jobs)
            slot.jobs.clear()
            with contextlib.suppress(OSError):
                slot.conn.close()  # type: ignore[union-attr]
            slot.proc = slot.conn = None
        return jobs
