"""What the daemon looks like from outside: a frozen `Snapshot` the loop publishes.

The loop builds one at the end of every step from what only it may touch (the pool, the
watcher, the journal's health, its own counts) and swaps it in with one assignment, so
any other thread (the dashboard's) reads a consistent picture without a lock and without
walking the loop's structures. Ages and run times are computed when read, from the
monotonic instants the snapshot carries, so an idle daemon's snapshot stays true.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from daemon.faults import PauseReason
from daemon.shared.instance import SharedView
from daemon.sinkstats import SinkHealth
from daemon.sources.view import SourceView
from formats.names import as_text, shown

VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class InFlight:
    """One file a worker is running now."""

    uid: str
    path: str
    attempt: int
    worker_pid: int | None
    started: float  # monotonic
    bytes_read: int
    size: int


@dataclass(frozen=True, slots=True)
class Stall:
    """A file whose worker has made no progress for the stall timeout (`daemon.pool`)."""

    uid: str
    path: str
    worker_pid: int | None
    where: str  # "in node parse", "in sink outputs.rows", "reading the input", …
    since: float  # monotonic: its last progress
    kill_after: float | None  # seconds of silence at which its worker is killed; None: never

    def as_dict(self, now: float) -> dict[str, Any]:
        return {"uid": self.uid, "path": shown(self.path), "worker_pid": self.worker_pid,
                "where": self.where, "for_s": round(max(0.0, now - self.since), 3),
                "kill_after_s": self.kill_after}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken: float  # monotonic: when the loop last finished a step
    ready: bool
    started_at: float  # wall clock: a timestamp, never a duration
    started: float  # monotonic: uptime is measured from it
    counts: dict[str, int]
    oldest_queued: float | None  # monotonic: when the oldest waiting file was first seen
    watcher_kind: str | None  # None: no watcher (--drain)
    watcher_alive: bool
    watcher_restarts: int
    watcher_overflows: int
    workers: int
    workers_alive: int
    worker_deaths: int
    worker_pids: tuple[int | None, ...]
    workers_frozen: tuple[int, ...]  # stopped by the kernel (SIGSTOP): no jobs until continued
    journal_healthy: bool
    journal_error: str | None
    journal_generation: int  # a new journal file each time it is bumped
    paused: PauseReason | None
    paused_since: float | None  # monotonic
    pauses: dict[str, int]  # since start, by cause
    in_flight: tuple[InFlight, ...]
    stuck: tuple[tuple[str, str], ...]  # (name, why) in unprocessed/, never claimed as is
    sinks: tuple[SinkHealth, ...]
    watch_dir: str
    results_dir: str
    pipeline: Any
    shared: SharedView | None = None  # shared mode: the lease, the peers, the counters
    stalled: tuple[Stall, ...] = ()  # files whose workers made no progress for a while
    stall_kills: int = 0  # workers killed for it since start
    memory_exceeded: int = 0  # attempts that hit the worker memory cap or the OOM killer
    worker_memory_mb: int | None = None  # the cap (RLIMIT_DATA) of each worker; None: none
    sources: tuple[SourceView, ...] = ()  # folders watched in place (daemon.sources)
    source_jobs: tuple[dict[str, Any], ...] = ()  # their jobs, newest first

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `/api/status` (ages as of now)."""
        now = time.monotonic()
        watching = self.watcher_kind is not None
        in_flight = [
            {
                "uid": f.uid, "path": shown(f.path), "attempt": f.attempt,
                "worker_pid": f.worker_pid, "running_s": round(now - f.started, 3),
                "bytes_read": f.bytes_read, "size": f.size,
            }
            for f in self.in_flight
        ]  # fmt: skip
        oldest = 0.0 if self.oldest_queued is None else max(0.0, now - self.oldest_queued)
        paused = None
        if self.paused is not None:
            since = self.paused_since or now
            paused = {"cause": self.paused.cause, "reason": self.paused.message,
                      "for_s": round(now - since, 3)}  # fmt: skip
        return {
            "version": VERSION,
            "pid": os.getpid(),
            "ready": self.ready,
            "started_at": self.started_at,
            "uptime_s": round(now - self.started, 3),
            "counts": dict(self.counts),
            "oldest_queued_age_s": round(oldest, 3),
            "loop": {"last_tick_age_s": round(now - self.taken, 3)},
            "watcher": {
                "alive": self.watcher_alive if watching else None,
                "kind": self.watcher_kind,
                "restarts": self.watcher_restarts,
                "overflows": self.watcher_overflows,
            },
            "workers": {
                "size": self.workers,
                "alive": self.workers_alive,
                "busy": len(in_flight),
                "deaths": self.worker_deaths,
                "pids": list(self.worker_pids),
                "frozen": list(self.workers_frozen),
                "stall_kills": self.stall_kills,
                "memory_limit_mb": self.worker_memory_mb,
                "memory_exceeded": self.memory_exceeded,
            },
            "stalled": [s.as_dict(now) for s in self.stalled],
            "journal": {
                "healthy": self.journal_healthy,
                "error": self.journal_error,
                "generation": self.journal_generation,
            },
            "paused": paused,
            "pauses": dict(self.pauses),
            "in_flight": in_flight,
            "stuck": [{"path": shown(path), "reason": as_text(why)} for path, why in self.stuck],
            "sinks": [s.as_dict(now) for s in self.sinks],
            "watch_dir": self.watch_dir,
            "results_dir": self.results_dir,
            "pipeline": self.pipeline,
            "shared": self.shared.as_dict() if self.shared else None,
        }
