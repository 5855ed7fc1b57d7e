"""Watching the workers once a tick: frozen ones, stalled ones, and the jobs held behind
them (`daemon.pool` owns the workers; this decides what their silence means).

A worker the kernel has stopped (SIGSTOP, a debugger) is *frozen*: it gets no more jobs,
the jobs queued behind its current one are taken back for the others, and its file resumes
when it is continued; it is never called stalled. A worker whose file made no progress
(`daemon.progress`) for `stall_timeout` is *stalled*: /health names the file, where it is
stuck and for how long, its queued jobs are taken back too, and after `stall_kill_after`
it is killed: its file is retried (a per-file transient error), or held without counting
the attempt when it was stuck inside a sink (the sink is the environment). A worker whose
progress thread is blocked too (a C call holding the GIL) is asked for a stack dump, which
its forwarded stderr brings back.

Taking jobs back is safe against the worker starting them at that moment: both sides pass
through the slot's gate (`daemon.attempt.Shared`), and the worker skips what was taken.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import psutil
import structlog

from daemon.attempt import Job, Outcome, Status
from daemon.progress import BEAT, BEAT_S, DUMP_SIGNAL, PROGRESS, where_from_dump
from daemon.snapshot import Stall
from daemon.summary import Error
from formats.names import shown

if TYPE_CHECKING:
    from daemon.slot import Slot

log = structlog.get_logger(__name__)

_STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
BEAT_LATE_S = BEAT_S * 3  # a progress thread this late is blocked too (a C call, the GIL)
Taken = list[tuple[Job, Outcome]]


class Kill(NamedTuple):
    """A worker the stall guard killed: what its death means for the file it held."""

    uid: str
    status: Status
    error: Error


class Supervisor:
    def __init__(self, stall_timeout: float, stall_kill_after: float) -> None:
        self.stall_timeout = stall_timeout
        self.stall_kill_after = stall_kill_after  # 0: never
        self.frozen: tuple[int, ...] = ()  # pids of workers the kernel has stopped
        self.stall_kills = 0  # workers killed for making no progress

    def check(self, slots: list[Slot]) -> Taken:
        """Note frozen and stalled workers and act; the jobs taken back from them."""
        now = time.monotonic()
        self._note_frozen(slots)
        taken: Taken = []
        for slot in slots:
            if slot.proc is None:
                continue
            if slot.pid in self.frozen:  # not stalled: it resumes when it is continued
                self._end_stall(slot, now)
                taken += self.take_back(slot, "its worker is frozen")
                continue
            taken += self._check_stall(slot, now)
        return taken

    def _note_frozen(self, slots: list[Slot]) -> None:
        frozen = []
        for s in slots:
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

    def _check_stall(self, slot: Slot, now: float) -> Taken:
        job = slot.job
        if slot.kill is not None:  # killed: its death is on the way
            return []
        if job is None or slot.shared is None:
            self._end_stall(slot, now)
            return []
        clocks = slot.shared.clocks
        if now - clocks[BEAT] > BEAT_LATE_S and (slot.dumped or 0) < clocks[BEAT]:
            slot.dumped = now  # its progress thread is blocked: ask C for its stacks, once
            with contextlib.suppress(OSError):
                os.kill(slot.proc.pid, DUMP_SIGNAL)
        last = max(clocks[PROGRESS], slot.busy_since)
        quiet = now - last
        if quiet < self.stall_timeout:
            self._end_stall(slot, now)
            return []
        where, sink = self._where(slot, now)
        kill_at = self.stall_kill_after or None
        taken = []
        if slot.stall is None or slot.stall.uid != job.uid:
            log.warning("file_stalled", path=job.rel, worker_pid=slot.pid, where=where,
                        no_progress_s=round(quiet, 1), kill_after_s=kill_at)  # fmt: skip
            taken = self.take_back(slot, "its worker is stalled")
        slot.stall = Stall(job.uid, job.rel, slot.pid, where, last, kill_at)
        if kill_at is not None and quiet >= kill_at:
            self._kill_stalled(slot, job, where, sink, quiet)
        return taken

    def _where(self, slot: Slot, now: float) -> tuple[str, str | None]:
        """Where the worker is by its own word, and the sink if it is in one; for a worker
        whose progress thread is blocked too (a C call holding the GIL), by the stack dump
        `_check_stall` asked it for, which its stderr brought back."""
        shared = slot.shared
        assert shared is not None
        said = shared.read_where() or "where unknown"
        sink = said.removeprefix("in sink ") if said.startswith("in sink ") else None
        if now - shared.clocks[BEAT] <= BEAT_LATE_S:
            return said, sink
        dump = where_from_dump(slot.tail.decode("utf-8", "replace"))
        text = dump if dump is not None else f"last seen {said}"
        return f"{text}; its progress thread is blocked too (a C call holding the GIL?)", sink

    def _end_stall(self, slot: Slot, now: float) -> None:
        if slot.stall is not None:
            log.info("file_stall_ended", path=slot.stall.path, worker_pid=slot.pid,
                     stalled_s=round(now - slot.stall.since, 1))  # fmt: skip
            slot.stall = None

    def _kill_stalled(
        self, slot: Slot, job: Job, where: str, sink: str | None, quiet: float
    ) -> None:
        message = (f"no progress for {quiet:.0f} s, {where}: its worker was killed "
                   f"(--stall-kill-after {self.stall_kill_after:g})")  # fmt: skip
        error: dict[str, Any] = {"type": "Stalled", "message": message}
        status = Status.RETRY
        if sink is not None:  # the sink is the environment: the file waits, not counted
            error.update(sink=sink, cause="sink_unavailable")
            status = Status.ENVIRONMENT
        slot.kill = Kill(job.uid, status, error)
        self.stall_kills += 1
        log.warning("worker_kill", slot=slot.index, pid=slot.pid, path=job.rel,
                    reason=message)  # fmt: skip
        with contextlib.suppress(OSError):
            slot.proc.kill()

    def take_back(self, slot: Slot, why: str) -> Taken:
        """The jobs `slot` holds that its worker has not started, taken back (it will skip
        them) to be given to another; none if the worker is inside the gate this moment
        (the next tick tries again)."""
        shared = slot.shared
        if shared is None or not slot.jobs:
            return []
        last = slot.numbers.get(slot.jobs[-1].uid, 0)
        if last <= shared.started.value or not shared.gate.acquire(timeout=0.05):
            return []
        try:
            started = shared.started.value
            queued = [j for j in slot.jobs if slot.numbers.get(j.uid, 0) > started]
            shared.revoked.value = slot.given
        finally:
            shared.gate.release()
        for job in queued:
            slot.jobs.remove(job)
            del slot.numbers[job.uid]
        if queued:
            log.info("jobs_taken_back", worker_pid=slot.pid, reason=why,
                     paths=[shown(j.rel) for j in queued])  # fmt: skip
        return [(job, Outcome(Status.UNSTARTED, None)) for job in queued]
