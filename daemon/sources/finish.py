"""What happens to a source's file once an attempt at one of its versions ends.

Processed or failed: the worker has committed its results and deliveries (replacing the
previous version's: same uid, same results names, same object keys), so the row records
the version as processed; a file that changed meanwhile is pending again (its new version
runs next). A transient error retries the same version with back-off, unless the file
changed (then the new version settles, no attempt counted); after `max_attempts` it fails
with its reason in its summary. An environment error pauses claiming as for the queue.
Only after a success, results and deliveries committed, may the file be deleted or moved
to the archive (`after`): never a version that is no longer the file's.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import time
from dataclasses import replace

import structlog

from daemon.attempt import Job, Outcome, Status
from daemon.commit import discard_temps
from daemon.faults import PauseReason
from daemon.moves import first_free
from daemon.outcomes import RETRY_CAP_S, Outcomes
from daemon.settle import signature
from daemon.sources.runtime import Flight, Runtime, Sources
from daemon.sources.store import Entry, EntryState, sig_text
from daemon.states import FileRef, State
from daemon.summary import Error, Summary, given_up

log = structlog.get_logger(__name__)


class Finisher:
    def __init__(self, sources: Sources, outcomes: Outcomes) -> None:
        self.sources = sources
        self.outcomes = outcomes
        sources.reject = self.reject

    def reject(self, job: Job, flight: Flight, reason: str) -> None:
        """A version that must not be processed (empty, mtime 0): failed at once."""
        self.sources.inflight.pop(job.uid, None)
        error = {"type": "Rejected", "message": reason}
        summary = given_up(job.uid, job.rel, job.original, 0, job.size, error, job.provenance,
                           origin=flight.origin.as_json())  # fmt: skip
        self.outcomes.write_summary_now(
            FileRef(job.uid, job.rel, State.FAILED, 0, job.original, job.size), summary
        )
        e = self.sources.store.get(flight.runtime.name, flight.entry.rel)
        if e is not None:
            self._ended(flight, e, job, summary, False)

    def finish(self, job: Job, outcome: Outcome) -> None:
        """Act on what an attempt at a source's version produced."""
        flight = self.sources.inflight.pop(job.uid, None)
        if flight is None:
            return
        summary = outcome.summary
        if summary is not None:
            self.outcomes.sinks.observe(summary)
        rt = flight.runtime
        e = self.sources.store.get(rt.name, flight.entry.rel)
        if e is None:  # its source was removed and its rows with it
            return
        changed = e.sig != flight.entry.sig or not _same_file(rt, e)
        match outcome.status:
            case Status.PROCESSED | Status.FAILED if summary is not None:
                self._ended(flight, e, job, summary, changed)
            case Status.UNSTARTED | Status.LAPSED:
                self._again(rt, e, 0.0)
            case Status.VANISHED:
                self.sources.write(rt, e, replace(e, state=EntryState.PENDING, due=0.0))
            case Status.ENVIRONMENT:
                err = (summary.error if summary is not None else None) or {}
                message = err.get("message") or "environment error"
                self.outcomes.pause.hold(PauseReason(err.get("cause", "folder_unusable"),
                                                     message), time.monotonic())  # fmt: skip
                self._again(rt, e, 0.0)
                log.warning("source_version_held", source=rt.name, path=e.rel, error=message,
                            action="waits, not counted, until the pause clears")  # fmt: skip
            case Status.RETRY:
                error = (summary.error if summary is not None else None) or {}
                self._retry(flight, e, job, error, changed)

    def _again(self, rt: Runtime, e: Entry, due: float) -> None:
        self.sources.write(rt, e, replace(e, state=EntryState.PENDING, due=due))

    def _retry(self, flight: Flight, e: Entry, job: Job, error: Error, changed: bool) -> None:
        rt = flight.runtime
        if changed:  # rewritten while it ran: the new version settles, nothing counted
            log.info("source_version_superseded", source=rt.name, path=e.rel,
                     version=flight.origin.number, error=error.get("message"))  # fmt: skip
            self.sources.write(
                rt,
                e,
                replace(
                    e, state=EntryState.PENDING, due=time.time() + self.sources.settings.settle
                ),
            )
            return
        attempts = e.attempts + 1
        if attempts >= self.outcomes.max_attempts:
            error = {**error, "message": f"{error.get('message')} (gave up after {attempts} "
                     f"attempt{'s' if attempts != 1 else ''})"}  # fmt: skip
            summary = given_up(job.uid, job.rel, job.original, attempts, job.size, error,
                               job.provenance, origin=flight.origin.as_json())  # fmt: skip
            discard_temps(self.sources.folders.tmp, job.uid)
            self.outcomes.write_summary_now(
                FileRef(job.uid, job.rel, State.FAILED, attempts, job.original, job.size), summary
            )
            self._ended(flight, replace(e, attempts=attempts), job, summary, False)
            return
        delay = min(self.outcomes.retry_backoff * 2 ** (attempts - 1), RETRY_CAP_S)
        delay *= random.uniform(0.5, 1.5)
        self.sources.write(rt, e, replace(e, state=EntryState.PENDING, attempts=attempts,
                                          due=time.time() + delay))  # fmt: skip
        log.warning("source_version_retry", source=rt.name, path=e.rel, attempt=attempts,
                    delay_s=round(delay, 3), error=error.get("message"))  # fmt: skip

    def _ended(self, flight: Flight, e: Entry, job: Job, summary: Summary, changed: bool) -> None:
        """The version's results are committed: processed or failed for good."""
        rt, origin = flight.runtime, flight.origin
        ok = summary.ok
        err = summary.error or {}
        sha = summary.sha256
        new = replace(
            e, version=origin.number, done_sig=sig_text(flight.entry.sig), done_sha256=sha,
            attempts=0, error=None if ok else err.get("message"),
            state=(EntryState.DONE if ok else EntryState.FAILED),
        )  # fmt: skip
        if changed:  # a newer version was seen meanwhile: it runs next
            due = time.time() + self.sources.settings.settle
            new = replace(new, state=EntryState.PENDING, due=due)
        elif rt.config.hash and sha:
            new = replace(new, sha256=sha)
        self.sources.write(rt, e, new)
        ref = FileRef(job.uid, job.rel, State.PROCESSED if ok else State.FAILED, job.attempt,
                      job.original, job.size)  # fmt: skip
        row = self.sources.journal.get(job.uid)
        self.sources.journal.transition(ref, row.state if row else State.QUEUED, job.rel,
                                        reason=None if ok else err.get("message"),
                                        summary=summary)  # fmt: skip
        self.outcomes.totals["processed" if ok else "failed"] += 1
        self.outcomes.totals["bytes"] += summary.size or 0
        if ok:
            self.outcomes.pause.succeeded()
            rt.done.append((time.monotonic(), summary.size or 0))
        else:
            rt.errors.append((time.time(), e.rel, err.get("message") or "failed"))
        log.info("source_version_processed" if ok else "source_version_failed", source=rt.name,
                 path=e.rel, version=origin.number, error=err.get("message"),
                 superseded=changed)  # fmt: skip
        self.sources.events.publish(
            "file_processed" if ok else "file_failed", path=job.rel, uid=job.uid,
            duration_s=summary.duration_s, size=summary.size,
            tags=summary.counts.get("tags"), processors=summary.counts.get("processors"),
            error=err.get("message"), node=err.get("processor"), source=rt.name,
        )  # fmt: skip
        if not changed:
            self.sources.jobs.finished(e.job, "done" if ok else "failed", e.size)
            if ok and rt.config.after != "keep":
                self._after(rt, new, flight)

    def _after(self, rt: Runtime, e: Entry, flight: Flight) -> None:
        """Delete the file, or move it into the archive folder, if it is still the version
        processed; the row goes (the path is free for a new file), the results stay."""
        path = os.path.join(rt.root, e.rel)
        try:
            if signature(os.lstat(path)) != flight.entry.sig:
                return  # a newer version: it is processed in its turn
            if rt.config.after == "delete":
                os.unlink(path)
                where = None
            else:
                where = _archive(path, str(rt.config.archive), e.rel)
        except OSError as exc:  # a read-only source, say: the file stays, the row says why
            message = f"after {rt.config.after}: {exc.strerror or exc}"
            self.sources.write(rt, e, replace(e, error=message))
            rt.errors.append((time.time(), e.rel, message))
            log.error("source_after_failed", source=rt.name, path=e.rel, error=message,
                      action="the file is kept where it is")  # fmt: skip
            return
        self.sources.write(rt, e, None)
        rt.finalised += 1
        log.info("source_file_archived" if where else "source_file_removed", source=rt.name,
                 path=e.rel, to_path=where)  # fmt: skip


def _same_file(rt: Runtime, e: Entry) -> bool:
    """Whether the file at `e`'s path still has the version `e` saw last."""
    try:
        return signature(os.lstat(os.path.join(rt.root, e.rel))) == e.sig
    except OSError:
        return False


def _archive(path: str, archive: str, rel: str) -> str:
    """Move `path` to `archive/rel` (a `~N` suffix if taken); the path it got."""
    final = first_free(rel, lambda r: os.path.lexists(os.path.join(archive, r)))
    dest = os.path.join(archive, final)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        os.rename(path, dest)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another filesystem: copied, made durable, then removed
            raise
        tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.folderd-copy")
        shutil.copy2(path, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, dest)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return dest
