"""One attempt at one file, as the pool and a worker speak of it.

The words both sides of a worker's pipe share, and nothing that runs a job: the `Job`
the pool sends (picklable), what became of it (`Status`, `Outcome`), the messages down
the pipe each way (`ToWorker`, `FromWorker`: a pipeline to load, a job to run, a job
started, its `Progress`, its outcome), and the memory both sides read besides (`Shared`).
The code that runs a job is the worker's (`daemon.worker`, in the child process); the
code that hands jobs out and reads what comes back is the pool's (`daemon.pool`); the
loop acts on outcomes (`daemon.outcomes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # names only: this module is imported by everything of an attempt
    from daemon.commit import Temp
    from daemon.duplicates import Earlier
    from daemon.origin import Origin
    from daemon.provenance import Provenance
    from daemon.states import Claimed, FileRef, Folders
    from daemon.summary import Summary
    from processors import LoadedPipeline


@dataclass(frozen=True)
class Job:
    """One attempt at one file, as sent to a worker (picklable)."""

    uid: str
    rel: str  # name under underprocess/ (and of its results)
    original: str
    src: str  # absolute path to open
    attempt: int
    tmp_dir: str  # results/.folderd-tmp
    fsync: bool
    size: int = 0  # the input's size when it was claimed (for progress)
    claimed: Claimed | None = None  # what it was at its claim, if this attempt checks it
    rerun: bool = False  # an earlier attempt may have committed results
    earlier: tuple[Earlier, ...] = ()  # processed inputs of its size (--skip-duplicates)
    deadline: str | None = None  # shared mode: the file saying until when commits are safe
    provenance: Provenance | None = None  # the run it belongs to (`daemon.provenance`)
    origin: Origin | None = None  # a source's file, processed in place (`daemon.sources`)

    @property
    def results_dir(self) -> str:
        return os.path.dirname(self.tmp_dir)

    @classmethod
    def of(
        cls,
        ref: FileRef,
        folders: Folders,
        fsync: bool,
        earlier: tuple[Earlier, ...] = (),
        provenance: Provenance | None = None,
    ) -> Job:
        """The next attempt at `ref` (the first after a claim checks the claim)."""
        deadline = folders.commit_deadline
        return cls(ref.uid, ref.rel, ref.original, ref.open_path or ref.path(folders),
                   ref.attempt, str(folders.tmp), fsync, ref.size, ref.claimed,
                   rerun=ref.rerun or ref.attempt + ref.held > 1, earlier=earlier,
                   deadline=str(deadline) if deadline else None,
                   provenance=provenance)  # fmt: skip


class Status(StrEnum):
    """What became of an attempt (the first two are also a summary's `status`)."""

    PROCESSED = "processed"  # results committed: the input goes to processed/
    FAILED = "failed"  # the file can never succeed; its summary committed: to failed/
    RETRY = "retry"  # a transient error (or results not committed): try again later
    ENVIRONMENT = "environment"  # the machine failed (disk full, read-only): not counted
    VANISHED = "vanished"  # the input disappeared before or while it was read
    UNSTARTED = "unstarted"  # prefetched by a worker that died before starting it
    LAPSED = "lapsed"  # shared mode: the instance's lease lapsed, nothing was committed


@dataclass
class Outcome:
    """What an attempt produced."""

    status: Status
    summary: Summary | None  # None: it never started (UNSTARTED)
    temps: list[Temp] = field(default_factory=list)  # to commit, the summary last


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
class Started:
    """The worker began running this job (sent when it does, not when it was queued)."""

    uid: str


@dataclass(frozen=True, slots=True)
class Progress:
    """A running job's bytes read, and its pipeline counts so far (`Pipeline.live`)."""

    uid: str
    bytes_read: int
    counts: dict[str, Any] | None = None


ToWorker = LoadConfig | RunJob | Stop
FromWorker = Ready | Started | Progress | Outcome


WHERE_BYTES = 240  # room for where a worker is (`daemon.progress.where`), UTF-8


@dataclass(frozen=True)
class Shared:
    """What a worker shares with the pool besides its pipe: read by either side at any
    moment, with no message. Jobs are numbered 1, 2, … in the order given."""

    running: Any  # RawValue: the job whose pipeline runs now, 0 while none
    started: Any  # RawValue: the last job started (it never goes back)
    revoked: Any  # RawValue: jobs numbered up to this one must not start: taken back
    clocks: Any  # RawArray of monotonic seconds: `daemon.progress` BEAT and PROGRESS
    gate: Any  # Lock: a job starting and the pool taking jobs back, one at a time
    where: Any  # RawArray of bytes: where the worker was at its progress thread's last beat
    where_seq: Any  # RawValue: odd while `where` is being written (a seqlock)

    @classmethod
    def make(cls, ctx: Any) -> Shared:
        return cls(ctx.RawValue("q", 0), ctx.RawValue("q", 0), ctx.RawValue("q", 0),
                   ctx.RawArray("d", 2), ctx.Lock(), ctx.RawArray("c", WHERE_BYTES),
                   ctx.RawValue("q", 0))  # fmt: skip

    def set_where(self, text: str) -> None:
        """In the worker (its progress thread, the only writer)."""
        data = text.encode("utf-8", "replace")[: WHERE_BYTES - 1]
        self.where_seq.value += 1
        self.where.raw = data + b"\0" * (WHERE_BYTES - len(data))
        self.where_seq.value += 1

    def read_where(self) -> str | None:
        """In the pool: the last where the worker wrote (None: none yet, or it was being
        written each time we looked)."""
        for _ in range(10):
            seq = self.where_seq.value
            if seq % 2:
                continue
            data = self.where.raw
            if self.where_seq.value == seq:
                text = data.split(b"\0", 1)[0].decode("utf-8", "replace")
                return text or None
        return None

    def start(self, number: int) -> bool:
        """In the worker: start job `number`, unless the pool took it back."""
        with self.gate:
            if number <= self.revoked.value:
                return False
            self.started.value = self.running.value = number
            return True
