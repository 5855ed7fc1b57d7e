"""Jobs: "sync this folder (glob) now", with progress that survives a restart.

A job walks its source once; every file it matches is counted in its total and tagged with
the job's id, and counts as done at once if its version was processed already (an earlier
sync), else when the loop finishes it. Counts live here, in memory, and are saved with the
sources' journal; a restart recounts a running job from the rows tagged with it, and walks
again a job whose walk it had not finished (a walk is idempotent). One job runs per source
at a time: asking again while one runs answers with that one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from daemon.sources.store import Entry, EntryState, Store, sig_text
from formats.names import as_text

COUNTS = ("total_files", "total_bytes", "done_files", "done_bytes", "failed_files",
          "failed_bytes", "gone_files")  # fmt: skip


class JobState:
    SCANNING = "scanning"  # walking its folder: the total still grows
    RUNNING = "running"  # walked: waiting for its pending files
    DONE = "done"
    CANCELLED = "cancelled"


ACTIVE = (JobState.SCANNING, JobState.RUNNING)


@dataclass
class Job:
    id: int
    source: str
    glob: str | None
    state: str
    created: float
    finished: float | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    error: str | None = None
    dirty: bool = True  # counts changed since they were saved

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        pending = c["total_files"] - c["done_files"] - c["failed_files"] - c["gone_files"]
        pending_bytes = c["total_bytes"] - c["done_bytes"] - c["failed_bytes"]
        return {
            "id": self.id, "source": self.source, "glob": self.glob, "state": self.state,
            "created": self.created, "finished": self.finished, **c,
            "pending_files": max(pending, 0), "pending_bytes": max(pending_bytes, 0),
            "error": as_text(self.error) if self.error else None,
        }  # fmt: skip


def settled(e: Entry) -> str | None:
    """'done' or 'failed' if the version `e` last saw is the one processed last, else None
    (it waits for a worker)."""
    if e.done_sig != sig_text(e.sig):
        return None
    if e.state is EntryState.DONE:
        return "done"
    if e.state is EntryState.FAILED:
        return "failed"
    return None


class Jobs:
    """Every job the sources' journal knows, the active ones' counts kept current."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.by_id: dict[int, Job] = {}
        for row in reversed(store.jobs()):
            job = Job(row["id"], row["source"], row["glob"], row["state"], row["created"],
                      row["finished"], {k: row[k] for k in COUNTS}, row["error"])  # fmt: skip
            self.by_id[job.id] = job

    def resume(self) -> list[Job]:
        """Active jobs after a restart, recounted from their rows; the ones whose walk had
        not finished are returned: they walk again."""
        again = []
        for job in self.active():
            if job.state == JobState.SCANNING:
                again.append(job)
                continue
            job.counts = dict.fromkeys(COUNTS, 0)
            for e in self.store.job_entries(job.id):
                self._count_seen(job, e)
            self._maybe_done(job, scanned=True)
        return again

    def active(self) -> list[Job]:
        return [j for j in self.by_id.values() if j.active]

    def running_for(self, source: str) -> Job | None:
        return next((j for j in self.active() if j.source == source), None)

    def create(self, source: str, glob: str | None) -> Job:
        job_id = self.store.add_job(source, glob)
        job = self.by_id[job_id] = Job(job_id, source, glob, JobState.SCANNING, time.time())
        return job

    def scan_started(self, job: Job) -> None:
        job.counts = dict.fromkeys(COUNTS, 0)
        job.state, job.dirty = JobState.SCANNING, True

    def seen(self, job_id: int, e: Entry) -> None:
        """The walk of `job_id` found `e` (tagged with it)."""
        job = self.by_id.get(job_id)
        if job is not None and job.active:
            self._count_seen(job, e)

    def _count_seen(self, job: Job, e: Entry) -> None:
        c = job.counts
        if e.state is EntryState.DELETED:
            return
        c["total_files"] += 1
        c["total_bytes"] += e.size
        if e.state is EntryState.CANCELLED:
            c["gone_files"] += 1
        elif (kind := settled(e)) is not None:
            c[f"{kind}_files"] += 1
            c[f"{kind}_bytes"] += e.size
        job.dirty = True

    def finished(self, job_id: int | None, kind: str, size: int) -> None:
        """A file `job_id` counts ended: 'done', 'failed' or 'gone' (deleted before it ran)."""
        job = self.by_id.get(job_id) if job_id is not None else None
        if job is None or not job.active:
            return
        job.counts[f"{kind}_files"] += 1
        if kind != "gone":
            job.counts[f"{kind}_bytes"] += size
        job.dirty = True
        self._maybe_done(job, scanned=job.state == JobState.RUNNING)

    def reopened(self, e: Entry) -> None:
        """The version `e`, done or failed, runs again: the job counting it (if still
        active) takes it back from its done or failed files, `finished` counts it again."""
        job = self.by_id.get(e.job) if e.job is not None else None
        if job is None or not job.active or (kind := settled(e)) is None:
            return
        job.counts[f"{kind}_files"] -= 1
        job.counts[f"{kind}_bytes"] -= e.size
        job.dirty = True

    def scanned(self, job_id: int, error: str | None) -> None:
        job = self.by_id.get(job_id)
        if job is None or not job.active:
            return
        job.error = error
        job.state = JobState.RUNNING
        self._maybe_done(job, scanned=True)

    def _maybe_done(self, job: Job, scanned: bool) -> None:
        c = job.counts
        if scanned and (job.error or c["done_files"] + c["failed_files"] + c["gone_files"]
                        >= c["total_files"]):  # fmt: skip
            job.state, job.finished, job.dirty = JobState.DONE, time.time(), True

    def cancel(self, job: Job) -> None:
        job.state, job.finished, job.dirty = JobState.CANCELLED, time.time(), True

    def save(self) -> None:
        for job in self.by_id.values():
            if job.dirty:
                self.store.save_job(job.id, job.state, job.counts, job.finished, job.error)
                job.dirty = False

    def views(self, limit: int = 50) -> tuple[dict[str, Any], ...]:
        jobs = sorted(self.by_id.values(), key=lambda j: j.id, reverse=True)[:limit]
        return tuple(j.as_dict() for j in jobs)
