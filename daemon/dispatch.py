"""The files between the loop and the workers (loop thread only).

`give()` hands each free worker its next file: one already in underprocess/ first (a
retry due, a file recovered or handed back), else a new claim (`daemon.claims`), else a
source's due version (`daemon.sources`). `finish()` takes each attempt's outcome to
where its file goes next (`daemon.outcomes`; `daemon.sources.finish` for a source's
version). It keeps the files in flight, and tells what their workers say of them: a file
started, its progress.
"""

from __future__ import annotations

import structlog

from daemon.attempt import Job, Outcome, Progress
from daemon.claims import Claimer
from daemon.duplicates import Duplicates
from daemon.events import EventBus
from daemon.journal import Journal
from daemon.outcomes import Outcomes, Waiting
from daemon.pool import WorkerPool
from daemon.sources.finish import Finisher
from daemon.sources.runtime import Sources
from daemon.states import FileRef, Folders, State

log = structlog.get_logger(__name__)


class Dispatch:
    def __init__(
        self,
        folders: Folders,
        journal: Journal,
        events: EventBus,
        claimer: Claimer,
        waiting: Waiting,
        outcomes: Outcomes,
        sources: Sources,
        duplicates: Duplicates,
        *,
        fsync: bool,
    ) -> None:
        self.folders = folders
        self.journal = journal
        self.events = events
        self.claimer = claimer
        self.waiting = waiting
        self.outcomes = outcomes
        self.sources = sources
        self.duplicates = duplicates
        self.fsync = fsync
        self.inflight: dict[str, FileRef] = {}  # the queue's files given to a worker
        self._finisher = Finisher(sources, outcomes)

    def give(self, pool: WorkerPool) -> None:
        """A file for each worker of `pool` that may take one, while there are files."""
        while (slot := pool.next_free()) is not None:
            ref = self._next_ref()
            if ref is None:  # the queue first; then a source's due version, if any
                source_job = self.sources.next_job()
                if source_job is None:
                    return
                if not pool.submit(slot, source_job):
                    self.sources.unsubmitted(source_job)
                    return
                continue
            self.inflight[ref.uid] = ref
            job = Job.of(ref, self.folders, self.fsync, self.duplicates.earlier(ref.size),
                         self.outcomes.provenance)  # fmt: skip
            if not pool.submit(slot, job):  # the worker just died: keep the file
                del self.inflight[ref.uid]
                ref.attempt -= 1
                self.waiting.put(ref, first=True)
                return
            ref.claimed = None  # checked by this attempt; a retry starts from what it left

    def _next_ref(self) -> FileRef | None:
        """A file for a free worker: one already in underprocess/ first, else a new claim."""
        ref = self.waiting.pop()
        if ref is None:
            return self.claimer.next()
        ref.attempt += 1
        self.journal.started(ref)
        return ref

    def finish(self, done: list[tuple[Job, Outcome]]) -> None:
        """Act on what the workers finished (or what the pool took back from them)."""
        for job, outcome in done:
            if job.origin is not None:  # a source's version
                self._finisher.finish(job, outcome)
                continue
            self.outcomes.finish(self.inflight.pop(job.uid), outcome)

    def taken_back(self, jobs: list[Job]) -> None:
        """Cold stop: jobs whose workers were killed wait again (a source's version is
        pending again at the next start)."""
        for job in jobs:
            if job.origin is None:
                self.waiting.put(self.inflight.pop(job.uid))

    def started(self, job: Job, worker_pid: int | None) -> None:
        """Its worker began it now (a job queued behind another starts later, or never,
        if it is taken back from a frozen or stalled worker)."""
        ref = self.inflight.get(job.uid)
        state = ref.state.value if ref is not None else State.CLAIMED.value
        log.info("file_started", path=job.rel, state=state, attempt=job.attempt,
                 worker_pid=worker_pid)  # fmt: skip
        self.events.publish(
            "file_started", path=job.rel, uid=job.uid, attempt=job.attempt, worker_pid=worker_pid
        )

    def progress(self, job: Job, progress: Progress) -> None:
        counts = progress.counts or {}
        self.events.publish(
            "file_progress", path=job.rel, uid=job.uid, bytes=progress.bytes_read,
            size=job.size, tags=counts.get("tags"), processors=counts.get("processors"),
        )  # fmt: skip
