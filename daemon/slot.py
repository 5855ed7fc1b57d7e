"""One worker of the pool as the pool sees it (the parent side): its process, its pipe, the
jobs it holds, its stderr's tail, and what its death means.

A worker's stderr comes to the pool through a pipe: forwarded to the daemon's own, its
tail kept, for it names a death (`Slot.death`): the stall guard's kill
(`daemon.supervisor`), the memory cap (`daemon.memory`), the kernel's OOM killer, or the
signal or exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from daemon import memory
from daemon.attempt import Job, Shared, Status
from daemon.snapshot import Stall
from daemon.summary import Error
from daemon.supervisor import Kill

TAIL_BYTES = 16384  # of a worker's stderr: its last words, a stack dump of every thread


class Death(NamedTuple):
    """What a worker's death means for the file it was running."""

    status: Status  # RETRY, or ENVIRONMENT for a stall inside a sink
    error: Error  # the file's error, as its summary will say
    by_memory: bool = False  # the memory cap or the kernel's OOM killer


@dataclass
class Slot:
    """One worker process of the pool, and what the pool knows of it."""

    index: int
    proc: Any = None
    conn: Connection | None = None
    # in the order given: finished ones waiting for their commit, the one running, queued
    jobs: deque[Job] = field(default_factory=deque)
    numbers: dict[str, int] = field(default_factory=dict)  # each held job's number
    given: int = 0  # jobs given to this process
    current: str | None = None  # the uid of the job it said it started, until answered
    started: float = 0.0  # monotonic: when `current` started
    busy_since: float = 0.0  # monotonic: given work while idle, a job started or answered
    shared: Shared | None = None
    err: Connection | None = None  # the read end of its stderr
    tail: bytes = b""  # the last TAIL_BYTES of its stderr
    err_bytes: int = 0  # all it wrote there
    err_mark: int = 0  # err_bytes when its current job started: what is new is that job's
    quick: bool = False  # its last file took under QUICK_S (it may hold up to DEEP)
    bytes_read: int = 0
    config_gen: int = -1
    ready: bool = False  # the process said it started; only then does it get jobs
    respawn_at: float | None = None  # no process: start one at this monotonic time
    stall: Stall | None = None
    kill: Kill | None = None  # killed by the stall guard
    dumped: float | None = None  # monotonic: when we last asked it for a stack dump
    oom: memory.OomCounters | None = None  # the kernel's OOM counters when it started

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def job(self) -> Job | None:
        """The job this worker is running now (or, before it says, the next it will)."""
        held = (j for j in self.jobs if j.uid == self.current)
        return next(held, self.jobs[0] if self.jobs else None)

    def running_job(self) -> Job | None:
        """The job whose pipeline runs in the process now, by its own word (shared
        memory); else the oldest it holds, which is being committed."""
        number = self.shared.running.value if self.shared is not None else 0
        held = (j for j in self.jobs if number and self.numbers.get(j.uid) == number)
        return next(held, self.jobs[0] if self.jobs else None)

    def forward_stderr(self) -> None:
        """What the worker wrote to stderr, to the daemon's own (journald, a terminal),
        keeping its tail: a library's last words before it aborts name the cause."""
        if self.err is None:
            return
        while True:
            try:
                data = os.read(self.err.fileno(), 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # every writer is gone: nothing more will come
                with contextlib.suppress(OSError):
                    self.err.close()
                self.err = None
                return
            self.tail = (self.tail + data)[-TAIL_BYTES:]
            self.err_bytes += len(data)
            with contextlib.suppress(OSError):
                os.write(2, data)

    def death(self, code: int | None, why: str, memory_mb: int | None, slots: list[Slot]) -> Death:
        """What this worker's death (exit `code`, `why` in words) means for the file it was
        running: the stall guard's kill, the memory cap (`memory_mb`), the kernel's OOM
        killer (charged to this death, none of the other `slots`'), or the bare signal or
        exit code."""
        if self.kill is not None:
            return Death(self.kill.status, self.kill.error)
        new = self.err_bytes - self.err_mark  # what it wrote since its job started
        since_start = self.tail[-new:] if new else b""
        if memory_mb and memory.allocation_failed(since_start):
            limit = {"type": "MemoryLimit", "message": memory.limit_message(memory_mb)}
            return Death(Status.RETRY, limit, by_memory=True)
        if code == -signal.SIGKILL and self.oom is not None:
            after = memory.OomCounters.read(os.getpid())
            oom = self.oom.killed_by_oom(after)
            if oom is not None:
                for other in slots:  # that kill is this death's, none of theirs
                    if other is not self and other.oom is not None:
                        other.oom = other.oom.charged(self.oom, after)
                killed = {"type": "OomKilled", "message": f"worker process {oom}"}
                return Death(Status.RETRY, killed, by_memory=True)
        died = {"type": "ChildProcessError", "message": f"worker process died ({why})"}
        return Death(Status.RETRY, died)


def exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            return f"killed by signal {-code}"
        return f"killed by signal {-code} ({name})"
    return f"exit {code}"
