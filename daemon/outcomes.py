"""What happens to a file once an attempt ends, or ends before it began.

Processed or failed: its results are already committed (by the worker), so the input moves
to processed/ or failed/. A transient error: the file waits in underprocess/ for a retry,
with back-off and jitter, until `max_attempts`; then it fails, its reason in the summary.
Vanished: the journal says so. Rejected (never claimed: a FIFO, an empty file, cancelled):
straight from unprocessed/ to failed/. Everything here runs on the loop's thread.
"""

from __future__ import annotations

import heapq
import os
import random
import time
from collections import deque
from collections.abc import Callable

import structlog

from daemon.attempt import Outcome, Status
from daemon.commit import Temp, commit_results, discard_temps
from daemon.errors import DaemonError
from daemon.events import EventBus
from daemon.faults import Fault, Pause, PauseReason, cause_of, classify
from daemon.journal import Journal
from daemon.moves import name_bytes, shorten, transition
from daemon.provenance import Provenance
from daemon.shared import reservations
from daemon.sinkstats import SinkStats
from daemon.states import FileRef, Folders, State
from daemon.summary import Error, Summary, error_info, given_up, write_summary

log = structlog.get_logger(__name__)

RETRY_CAP_S = 300.0


class Waiting:
    """Files in underprocess/ waiting for a worker: recovered at start, handed back by a
    worker that died before starting them, or (`later`) due for a retry."""

    def __init__(self) -> None:
        self._now: deque[FileRef] = deque()
        self._later: list[tuple[float, int, FileRef]] = []  # a heap by due time
        self._seq = 0

    def __len__(self) -> int:
        return len(self._now) + len(self._later)

    def put(self, ref: FileRef, *, first: bool = False) -> None:
        if first:
            self._now.appendleft(ref)
        else:
            self._now.append(ref)

    def later(self, ref: FileRef, due: float) -> None:
        self._seq += 1
        heapq.heappush(self._later, (due, self._seq, ref))

    def next_due(self) -> float | None:
        return self._later[0][0] if self._later else None

    def release_due(self, now: float) -> None:
        while self._later and self._later[0][0] <= now:
            self._now.append(heapq.heappop(self._later)[2])

    def pop(self) -> FileRef | None:
        return self._now.popleft() if self._now else None

    def take_all(self) -> list[FileRef]:
        refs = [*self._now, *(ref for _, _, ref in self._later)]
        self._now.clear()
        self._later.clear()
        return refs


class Outcomes:
    def __init__(
        self,
        folders: Folders,
        journal: Journal,
        events: EventBus,
        waiting: Waiting,
        pause: Pause,
        *,
        max_attempts: int,
        retry_backoff: float,
        fsync: bool,
    ) -> None:
        self.folders = folders
        self.journal = journal
        self.events = events
        self.waiting = waiting
        self.pause = pause
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.fsync = fsync
        self.name_max = os.pathconf(folders.results, "PC_NAME_MAX")
        self.totals = {"processed": 0, "failed": 0, "retried": 0, "bytes": 0, "rejected": 0}
        self.sinks = SinkStats()
        self.provenance: Provenance | None = None  # of the config in use (the loop sets it)
        # called with the summary of each file that moved to processed/ or failed/, before
        # the journal flush that commits the move (the run's report, the outbox)
        self.on_done: list[Callable[[Summary], None]] = []

    def finish(self, ref: FileRef, outcome: Outcome) -> None:
        """Act on what an attempt at `ref` produced."""
        summary = outcome.summary
        if summary is not None:
            self.sinks.observe(summary)
        match outcome.status:
            case Status.PROCESSED | Status.FAILED if summary is not None:  # committed
                self.move_done(ref, summary)
            case Status.UNSTARTED | Status.LAPSED:  # prefetched by a worker that then died,
                # or not committed because the lease lapsed: once renewed, it runs again
                if outcome.status is Status.LAPSED:
                    log.warning("commit_withheld", path=ref.rel, state=ref.state.value,
                                reason="this instance's lease lapsed")  # fmt: skip
                ref.attempt -= 1
                self.waiting.put(ref, first=True)
            case Status.VANISHED if summary is not None:
                self.vanished(ref, summary, "removed during processing")
            case Status.RETRY:
                self.retry_or_fail(ref, _error(summary))
            case Status.ENVIRONMENT:
                self.hold(ref, _error(summary))

    def vanished(self, ref: FileRef, summary: Summary, reason: str) -> None:
        """Someone removed the claimed file from underprocess/: the journal says so, and
        in shared mode the name it held is free again."""
        self.journal.finished(ref.uid, summary)
        self.journal.set_state(ref.uid, State.MISSING, reason)
        if self.folders.instance:
            reservations.release_gone(self.folders, ref.rel, ref.uid)
        log.warning("file_vanished", path=ref.rel, attempt=ref.attempt,
                    state=State.CLAIMED.value, reason=reason)  # fmt: skip

    def hold(self, ref: FileRef, error: Error) -> None:
        """The machine failed this attempt (a full disk…): it is not counted, the file waits
        first in line, and claiming pauses until the condition clears."""
        ref.attempt -= 1
        ref.held += 1
        self.waiting.put(ref, first=True)
        message = error.get("message") or "environment error"
        self.pause.hold(PauseReason(error.get("cause", "folder_unusable"), message),
                        time.monotonic())  # fmt: skip
        log.warning("file_held", path=ref.rel, state=ref.state.value, error=message,
                    action="waits, not counted, until the pause clears")  # fmt: skip

    def recovered(self, ref: FileRef, committed: Summary | None = None) -> None:
        """A file a dead run left in underprocess/: moved on if its results were committed
        (`committed`, its summary), else processed again, unless it has already been
        interrupted `max_attempts` times (then it is what kills the daemon)."""
        if committed is not None:
            self.move_done(ref, committed)
        elif ref.attempt >= self.max_attempts:
            why = f"interrupted {ref.attempt} times (the daemon died while processing it)"
            self.fail_exhausted(ref, {"type": "Interrupted", "message": why})
        else:
            self.waiting.put(ref)

    def move_done(self, ref: FileRef, summary: Summary) -> None:
        ok = summary.ok
        duration_ms = round(summary.duration_s * 1000, 1)
        err = summary.error or {}
        try:
            transition(
                self.folders,
                self.journal,
                ref,
                State.PROCESSED if ok else State.FAILED,
                reason=None if ok else err.get("message"),
                summary=summary,
                duration_ms=duration_ms,
            )
        except FileNotFoundError:
            self.vanished(ref, summary, "removed before it could be moved")
            return
        except (OSError, DaemonError) as exc:  # processed/ or failed/ unwritable, a full disk…
            log.error("file_move_failed", path=ref.rel, state=State.CLAIMED.value,
                      to="processed" if ok else "failed", error=str(exc))  # fmt: skip
            if classify(exc) is Fault.ENVIRONMENT:  # a re-run replaces its results
                self.hold(ref, error_info(exc, cause=cause_of(exc)))
            elif ok or ref.attempt < self.max_attempts:
                self.retry_or_fail(ref, error_info(exc))  # a re-run replaces its results
            # else: it stays in underprocess/ and is recovered at the next start
            return
        self.totals["processed" if ok else "failed"] += 1
        self.totals["bytes"] += summary.size or 0
        self.pause.succeeded()
        self.events.publish(
            "file_processed" if ok else "file_failed",
            path=ref.rel,
            uid=ref.uid,
            duration_s=summary.duration_s,
            size=summary.size,
            tags=summary.counts.get("tags"),
            processors=summary.counts.get("processors"),
            error=err.get("message"),
            node=err.get("processor"),  # the node a data error is charged to (pipeline page)
        )
        for hook in self.on_done:
            hook(summary)

    def retry_or_fail(self, ref: FileRef, error: Error) -> None:
        if ref.attempt >= self.max_attempts:
            self.fail_exhausted(ref, error)
            return
        delay = min(self.retry_backoff * 2 ** (ref.attempt - 1), RETRY_CAP_S)
        delay *= random.uniform(0.5, 1.5)
        self.waiting.later(ref, time.monotonic() + delay)
        self.totals["retried"] += 1
        log.warning(
            "file_retry_scheduled",
            path=ref.rel,
            state=ref.state.value,
            attempt=ref.attempt,
            delay_s=round(delay, 3),
            error=error.get("message"),
        )
        self.events.publish(
            "file_retry", path=ref.rel, uid=ref.uid, attempt=ref.attempt, error=error.get("message")
        )

    def fail_exhausted(self, ref: FileRef, error: Error) -> None:
        error = {
            **error,
            "message": f"{error.get('message')} (gave up after {ref.attempt} "
            f"attempt{'s' if ref.attempt != 1 else ''})",
        }
        summary = given_up(ref.uid, ref.rel, ref.original, ref.attempt, ref.size, error,
                           self.provenance)  # fmt: skip
        discard_temps(self.folders.tmp, ref.uid)
        self._write_summary_now(ref, summary)
        self.move_done(ref, summary)

    def reject(self, ref: FileRef, reason: str) -> None:
        """A file in unprocessed/ that must not be processed at all → failed/ with `reason`."""
        transition(self.folders, self.journal, ref, State.FAILED, reason=reason)
        error = {"type": "Rejected", "message": reason}
        summary = given_up(ref.uid, ref.rel, ref.original, 0, ref.size, error, self.provenance)
        self._write_summary_now(ref, summary)
        self.journal.finished(ref.uid, summary)
        self.totals["rejected"] += 1
        self.events.publish("file_failed", path=ref.rel, uid=ref.uid, error=reason)
        for hook in self.on_done:
            hook(summary)

    def write_summary_now(self, ref: FileRef, summary: Summary) -> None:
        """`_write_summary_now`, for a file that is not in the queue (a source's)."""
        self._write_summary_now(ref, summary)

    def _write_summary_now(self, ref: FileRef, summary: Summary) -> None:
        """Write a summary the loop made itself (a reject, a give-up); never raises. A name
        too long for `<name>.json` gets its summary under a shortened, unique one."""
        tmp = str(self.folders.tmp / f"{ref.uid}.{ref.attempt}.json")
        head, _, name = ref.rel.rpartition("/")
        if name_bytes(name) + len(".json") > self.name_max:
            name = shorten(name, self.name_max - len(".json"), tag=f"~{ref.uid[:8]}")
        temps = [Temp(tmp, f"{head}/{name}.json" if head else f"{name}.json")]
        try:
            write_summary(tmp, summary)
        except OSError as write_error:
            exc: OSError | None = write_error
        else:
            exc = commit_results(self.folders.results, ref.uid, temps, self.fsync, rerun=True)
        if exc is not None:  # the reason is still in the journal and the log
            log.error("summary_write_failed", path=ref.rel, error=str(exc),
                      reason=(summary.error or {}).get("message"))  # fmt: skip


def _error(summary: Summary | None) -> Error:
    return (summary.error if summary is not None else None) or {}
