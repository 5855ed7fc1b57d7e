"""What the loop shows of itself: the snapshot it publishes (`daemon.snapshot`) and the
one-line status systemd shows, both from the parts only the loop's thread may touch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from daemon.snapshot import Snapshot

if TYPE_CHECKING:
    from daemon.core import Daemon


def snapshot_of(d: Daemon) -> Snapshot:
    """The picture of daemon `d` now (its loop's thread: only it may touch the parts)."""
    w = d.watcher
    return Snapshot(
        taken=time.monotonic(), ready=d.ready, started_at=d.started_at,
        started=d.started,
        counts=counts_of(d), oldest_queued=d.intake.oldest(),
        watcher_kind=w.kind if w else None, watcher_alive=w.alive() if w else False,
        watcher_restarts=w.restarts if w else 0, watcher_overflows=w.overflows if w else 0,
        workers=len(d.pool.slots), workers_alive=d.pool.alive_count(),
        worker_deaths=d.pool.deaths, worker_pids=tuple(s.pid for s in d.pool.slots),
        workers_frozen=d.pool.frozen,
        journal_healthy=d.journal.healthy, journal_error=d.journal.last_error,
        journal_generation=d.journal.generation,
        paused=d.pause.reason, paused_since=d.pause.since,
        pauses=dict(d.pause.counts), in_flight=d.pool.in_flight(),
        stuck=d.intake.stuck(), sinks=d.outcomes.sinks.view(d.pipeline.config),
        watch_dir=str(d.folders.root), results_dir=str(d.folders.results),
        pipeline=d.pipeline, shared=d.shared.view() if d.shared else None,
        stalled=d.pool.stalled(), stall_kills=d.pool.stall_kills,
        memory_exceeded=d.pool.memory_exceeded, worker_memory_mb=d.pool.memory_mb,
        sources=d.sources.view(), source_jobs=d.sources.jobs.views(),
    )  # fmt: skip


def counts_of(d: Daemon) -> dict[str, int]:
    """Files the loop holds now, by where they are in their life."""
    return {
        "queued": len(d.intake),
        "processing": len(d.dispatch.inflight),
        "waiting": len(d.waiting),
        **d.outcomes.totals,
    }


def status_line(d: Daemon) -> str:
    """The line `systemctl status folderd` shows."""
    c = counts_of(d)
    why = f"paused: {d.pause.reason.message}; " if d.pause.reason else ""
    return (
        f"{why}queued {c['queued']}, processing {c['processing']}, waiting "
        f"{c['waiting']}; done {c['processed']}, failed {c['failed'] + c['rejected']}"
    )
