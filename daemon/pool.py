"""A pool of worker processes, one file at a time each, and their supervision: the parent
side of the workers (the child side is `daemon.worker`; they speak `daemon.attempt`).

Unlike `concurrent.futures.ProcessPoolExecutor` (whose whole pool breaks, failing every
pending future, when one worker dies), each slot here is one process with its own pipe,
so a death (segfault, OOM kill) is charged to exactly the file that slot was running;
the slot gets a new process and the others never notice (`daemon.slot`: one worker as
the pool sees it).

Once a tick the pool has its workers looked at (`daemon.supervisor`: frozen and stalled
ones, and the jobs held behind them). A death is named for what it was (`Slot.death`):
the memory cap (`daemon.memory`), the kernel's OOM killer, the stall guard, or the
signal.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

import structlog

from daemon import memory
from daemon.attempt import (
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
)
from daemon.slot import Slot, exit_text
from daemon.snapshot import InFlight, Stall
from daemon.summary import Start
from daemon.supervisor import Supervisor
from daemon.worker.main import worker_main
from formats.names import shown
from processors import LoadedPipeline

__all__ = ["DEEP", "PREFETCH", "QUICK_S", "SMALL_BYTES", "WorkerPool"]

log = structlog.get_logger(__name__)

_CTX = multiprocessing.get_context("spawn")  # safe with the daemon's threads; forks nothing

PREFETCH = 2  # jobs a worker holds: the one it runs and the next, so it never waits for us
# A worker whose last file took under QUICK_S, holding only files of at most SMALL_BYTES,
# may hold up to DEEP: in a burst of small files its commit thread then has several
# finished files to sync as one group (`_Committer`), and no file waits behind a big one.
DEEP = 8
SMALL_BYTES = 1 << 20
QUICK_S = 0.02


class WorkerPool:
    def __init__(
        self,
        size: int,
        pipeline: LoadedPipeline,
        trace: bool = False,
        on_progress: Callable[[Job, Progress], None] | None = None,
        worker_init: Callable[[], None] | None = None,
        *,
        on_started: Callable[[Job, int | None], None] | None = None,
        stall_timeout: float = 120.0,
        stall_kill_after: float = 600.0,
        memory_mb: int | None = None,
    ) -> None:
        self.slots = [Slot(i) for i in range(size)]
        self._on_progress = on_progress
        self._on_started = on_started
        self._worker_init = worker_init
        self._start_failures = 0  # workers in a row that died before saying they started
        self._pipeline = pipeline
        self._trace = trace
        self._gen = 0
        self.supervisor = Supervisor(stall_timeout, stall_kill_after)
        self.memory_mb = memory_mb  # None: no cap
        self.deaths = 0
        self.memory_exceeded = 0  # attempts that hit the cap or the OOM killer

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        parent, child = _CTX.Pipe(duplex=True)
        err_read, err_write = _CTX.Pipe(duplex=False)
        shared = Shared.make(_CTX)
        proc = _CTX.Process(
            target=worker_main,
            args=(child, os.getpid(), self._worker_init, shared, self.memory_mb, err_write),
            name=f"folderd-worker-{slot.index}",
            daemon=True,
        )
        proc.start()
        child.close()
        err_write.close()
        os.set_blocking(err_read.fileno(), False)
        slot.proc, slot.conn, slot.err, slot.tail = proc, parent, err_read, b""
        slot.err_bytes = slot.err_mark = 0
        slot.shared, slot.config_gen, slot.given, slot.current = shared, -1, 0, None
        slot.quick, slot.ready, slot.respawn_at = False, False, None
        slot.stall = slot.kill = slot.dumped = None
        slot.jobs.clear()
        slot.numbers.clear()
        slot.oom = memory.OomCounters.read(os.getpid())  # the worker's cgroups are ours
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
            slot.forward_stderr()
            self._discard(slot)

    def _discard(self, slot: Slot) -> None:
        for conn in (slot.conn, slot.err):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        slot.proc = slot.conn = slot.err = None

    # -- dispatch --------------------------------------------------------------
    def maintain(self) -> None:
        """Start the workers whose respawn back-off has passed (the loop calls this)."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.proc is None and slot.respawn_at is not None and slot.respawn_at <= now:
                self._spawn(slot)

    def _live(self) -> list[Slot]:
        """Workers that may take jobs: started, neither frozen nor stalled."""
        frozen = self.frozen
        return [s for s in self.slots if s.proc is not None and s.ready
                and s.pid not in frozen and s.stall is None]  # fmt: skip

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
            InFlight(job.uid, job.rel, job.attempt, s.pid, s.started, s.bytes_read, job.size)
            for s in self.slots
            if (job := s.job) is not None
        )

    def stalled(self) -> tuple[Stall, ...]:
        return tuple(s.stall for s in self.slots if s.stall is not None)

    def busy(self) -> list[Slot]:
        return [s for s in self.slots if s.jobs]

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
        now = time.monotonic()
        if not slot.jobs:
            slot.started = slot.busy_since = now
            slot.bytes_read = 0
        slot.given += 1
        slot.numbers[job.uid] = slot.given
        slot.jobs.append(job)
        log.debug("file_assigned", path=job.rel, worker_pid=slot.pid, behind=len(slot.jobs) - 1)
        return True

    def handles(self) -> list[Any]:
        """What the main loop waits on: each worker's pipe, its stderr and its process
        sentinel."""
        out: list[Any] = []
        for s in self.slots:
            if s.proc is not None and s.conn is not None:
                out += [s.conn, s.proc.sentinel]
                if s.err is not None:
                    out.append(s.err)
        return out

    # -- what comes back -------------------------------------------------------
    def collect(self, ready: list[Any]) -> list[tuple[Job, Outcome]]:
        """Outcomes for the handles the loop's wait reported ready; dead workers replaced."""
        done: list[tuple[Job, Outcome]] = []
        ready_set = set(map(id, ready))
        for slot in self.slots:
            if slot.proc is None or slot.conn is None:
                continue
            if slot.err is not None and id(slot.err) in ready_set:
                slot.forward_stderr()
            finished = False
            while not finished and slot.conn.poll():
                try:
                    msg = slot.conn.recv()
                except (EOFError, OSError):
                    break  # the worker died mid-message: handled as a death below
                finished = self._received(slot, msg, done)
            if finished:
                continue
            if id(slot.proc.sentinel) in ready_set or not slot.proc.is_alive():
                slot.proc.join(0.5)
                if slot.proc.is_alive():
                    continue
                done += self._replace_dead(slot)
        return done

    def _received(self, slot: Slot, msg: Any, done: list[tuple[Job, Outcome]]) -> bool:
        """Act on one message from `slot`'s worker; True once it holds no more jobs."""
        now = time.monotonic()
        match msg:
            case Ready():
                slot.ready, self._start_failures = True, 0
                log.debug("worker_ready", slot=slot.index, pid=slot.pid)
            case Started(uid):
                job = next((j for j in slot.jobs if j.uid == uid), None)
                if job is not None:
                    slot.current, slot.started, slot.busy_since = uid, now, now
                    slot.bytes_read, slot.err_mark = 0, slot.err_bytes
                    if self._on_started is not None:
                        self._on_started(job, slot.pid)
            case Progress(uid, bytes_read):
                job = next((j for j in slot.jobs if j.uid == uid), None)
                if job is not None and uid == slot.current:
                    slot.bytes_read = bytes_read
                if self._on_progress is not None and job is not None:
                    self._on_progress(job, msg)
            case Outcome() if slot.jobs:
                job = slot.jobs.popleft()
                slot.numbers.pop(job.uid, None)
                if slot.current == job.uid:
                    slot.current = None
                done.append((job, msg))
                summary = msg.summary
                if summary is not None and (summary.error or {}).get("type") == "MemoryLimit":
                    self.memory_exceeded += 1
                slot.quick = summary is not None and summary.duration_s < QUICK_S
                slot.busy_since, slot.bytes_read = now, 0
                return not slot.jobs
        return False

    def _replace_dead(self, slot: Slot) -> list[tuple[Job, Outcome]]:
        slot.forward_stderr()
        code = slot.proc.exitcode
        why = exit_text(code)
        done: list[tuple[Job, Outcome]] = []
        if not slot.ready:  # died starting up: no job was given to it; back off, don't spin
            self.deaths += 1
            self._start_failures += 1
            delay = min(0.5 * 2 ** (self._start_failures - 1), 30.0)
            log.error("worker_start_failed", slot=slot.index, pid=slot.proc.pid, exit=why,
                      error=memory.start_failure(self.memory_mb, slot.tail),
                      failures_in_a_row=self._start_failures, retry_in_s=delay)  # fmt: skip
            self._discard(slot)
            slot.respawn_at = time.monotonic() + delay
            return done
        if code == memory.EXIT_RECYCLE and slot.kill is None:  # it hit the cap and said so
            log.info("worker_recycled", slot=slot.index, pid=slot.proc.pid,
                     reason=memory.limit_message(self.memory_mb or 0),
                     returned=[shown(j.rel) for j in slot.jobs])  # fmt: skip
            done = [(j, Outcome(Status.UNSTARTED, None)) for j in slot.jobs]
        elif slot.jobs:
            # the death is the file whose pipeline was running (else the oldest's, being
            # committed); the others, queued or finished but not committed, run again
            self.deaths += 1
            status, error, by_memory = slot.death(code, why, self.memory_mb, self.slots)
            self.memory_exceeded += by_memory
            job = slot.running_job()
            if slot.kill is not None:
                job = next((j for j in slot.jobs if j.uid == slot.kill.uid), job)
            log.warning("worker_died", slot=slot.index, pid=slot.proc.pid, exit=why,
                        path=job.rel if job else None, error=error["message"])  # fmt: skip
            for other in slot.jobs:  # not charged an attempt
                if other is job:
                    done.append((other, Outcome(status, Start.of(other).failed(error))))
                else:
                    done.append((other, Outcome(Status.UNSTARTED, None)))
        else:
            self.deaths += 1
            log.warning("worker_died", slot=slot.index, pid=slot.proc.pid, exit=why)
        self._discard(slot)
        self._spawn(slot)
        return done

    def kill_busy(self) -> list[Job]:
        """Cold stop: kill the workers still holding jobs; return those jobs."""
        jobs: list[Job] = []
        for slot in self.busy():
            job = slot.job
            path = job.rel if job else None
            log.warning("worker_kill", slot=slot.index, pid=slot.pid, path=path,
                        reason="shutdown timeout")  # fmt: skip
            slot.proc.kill()
            slot.proc.join(2.0)
            jobs.extend(slot.jobs)
            slot.jobs.clear()
            slot.numbers.clear()
            self._discard(slot)
        return jobs

    # -- supervision -------------------------------------------------------------
    def supervise(self) -> list[tuple[Job, Outcome]]:
        """Once a tick: find frozen and stalled workers and act (`daemon.supervisor`);
        the jobs taken back from them, to be given to others."""
        return self.supervisor.check(self.slots)

    @property
    def frozen(self) -> tuple[int, ...]:
        """The pids of workers the kernel has stopped."""
        return self.supervisor.frozen

    @property
    def stall_kills(self) -> int:
        return self.supervisor.stall_kills
