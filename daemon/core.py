"""The daemon's main loop: one thread that owns every file's state.

Everything that happens reaches the loop through one place it waits on: the inbox (watcher
events, signals, dashboard commands, each with a wake-up byte on a pipe) and the worker
pool's pipes and process sentinels. Each iteration is the same short list of steps
(`_step`); signal handlers only set flags. Workers do the heavy, parallel part (reading,
the pipeline, writing, fsyncing and committing results under the file's own names); the
loop does the ordered part (stat, claim, the input's moves, journal), so there is never a
race over a file's state.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import random
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import wait
from typing import Any

import structlog

from config import ConfigError
from config.settings import Settings
from daemon.commit import commit_results
from daemon.errors import DaemonError
from daemon.events import EventBus
from daemon.intake import Intake, inspect
from daemon.journal import Journal
from daemon.notify import SystemdNotifier
from daemon.pool import WorkerPool
from daemon.recovery import WatchDirLock, recover
from daemon.settle import Signature, signature
from daemon.states import FileRef, Folders, State, transition
from daemon.watcher import Watcher, ignore_matcher
from daemon.worker import (
    Job,
    Outcome,
    discard_temps,
    error_info,
    failure_summary,
    write_summary,
)
from processors import LoadedPipeline

log = structlog.get_logger(__name__)

TICK_S = 1.0  # health/heartbeat period; the loop also wakes for every event
RETRY_CAP_S = 300.0


class Inbox:
    """A queue the loop can `wait()` on together with the worker pipes."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._armed = False  # a wake-up byte is on its way: later puts need not write one

    def fileno(self) -> int:
        return self._r

    def put(self, *item: Any) -> None:
        self._q.put(item)
        if not self._armed:  # a burst of watcher events costs one write, not one each
            self._armed = True
            self.wake()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._w, b"!")

    def drain(self) -> list[tuple[Any, ...]]:
        self._armed = False  # before reading the queue: a put after this point wakes us
        with contextlib.suppress(BlockingIOError):
            while os.read(self._r, 4096):
                pass
        items = []
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(self._q.get_nowait())
        return items

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        pipeline_config: LoadedPipeline,
        load_config: Callable[[], LoadedPipeline],
        *,
        events: EventBus | None = None,
        notifier: SystemdNotifier | None = None,
        worker_init: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.folders = Folders(settings.watch_dir.resolve(), settings.results_dir.resolve())
        self.queue_dir = str(self.folders.of(State.QUEUED))
        self.events = events or EventBus()
        self.notifier = notifier or SystemdNotifier.from_environ({})
        self._load_config = load_config
        self._fsync = not settings.no_fsync
        self._ignored = ignore_matcher(settings.ignore_patterns)
        self.inbox = Inbox()
        self.intake = Intake(self.queue_dir, settings.settle, self._ignored, self._on_settled)
        self.pipeline_config = pipeline_config
        self.pool = WorkerPool(
            settings.workers,
            pipeline_config,
            settings.trace,
            on_progress=self._on_progress,
            worker_init=worker_init,
        )
        self.watcher: Watcher | None = None
        self.journal: Journal | None = None
        self._lock = WatchDirLock(self.folders)
        self._claimed: deque[FileRef] = deque()  # in underprocess/, waiting for a worker
        self._retry: list[tuple[float, int, FileRef]] = []
        self._inflight: dict[str, FileRef] = {}
        self._seq = 0
        self._stop_signals = 0
        self._reload_requested = False
        self._next_rescan = 0.0
        self._next_tick = 0.0
        self._next_watchdog = 0.0
        self.started_at = time.time()
        self.last_tick = time.monotonic()
        self.ready = False
        self.totals = {"processed": 0, "failed": 0, "retried": 0, "bytes": 0, "rejected": 0}

    # -- the loop ----------------------------------------------------------------
    def run(
        self,
        *,
        drain: bool = False,
        install_signals: bool = True,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Run until a stop signal (or, with drain=True, until the queue is empty).

        `on_ready` runs once recovery is done and the watcher is up, before systemd is told
        READY=1 (main.py starts the dashboard there).
        """
        # Nothing to undo if these fail (a second daemon must not touch the first's files).
        self.folders.create()
        self._lock.acquire()
        reason = "signal"
        try:
            self._start(drain, install_signals, on_ready)
            while not self._stop_signals:
                self._step()
                if drain and self._idle():
                    reason = "drained"
                    break
        except BaseException as exc:
            reason = f"error: {type(exc).__name__}: {exc}"
            raise
        finally:
            self._shutdown(reason)
        return 0

    def _start(
        self, drain: bool, install_signals: bool, on_ready: Callable[[], None] | None
    ) -> None:
        self.journal = Journal(self.folders.meta / "journal.sqlite3")
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_stop_signal)
            signal.signal(signal.SIGINT, self._on_stop_signal)
            signal.signal(signal.SIGHUP, self._on_reload_signal)
        for ref in recover(self.folders, self.journal):
            self._requeue_recovered(ref)
        self.pool.start()
        if not drain:
            self.watcher = Watcher(
                self.folders.of(State.QUEUED),
                self.inbox.put,
                self._ignored,
                poll=self.settings.poll,
                poll_interval=self.settings.poll_interval,
                on_overflow=lambda: self.inbox.put("rescan"),
            )
            self.watcher.start()
        self.intake.scan(self.queue_dir)
        now = time.monotonic()
        self._next_rescan = now + self.settings.rescan_interval
        if on_ready is not None:
            on_ready()
        self.ready = True
        log.info(
            "daemon_started",
            watch_dir=str(self.folders.root),
            pid=os.getpid(),
            workers=self.settings.workers,
            mode="drain" if drain else "watch",
            fsync=self._fsync,
            settle_s=self.settings.settle,
        )
        self.notifier.ready(self._status_line())

    def _step(self) -> None:
        handles = [self.inbox, *self.pool.handles()]
        ready = wait(handles, self._timeout())
        now = time.monotonic()
        self._handle_inbox(now)
        if len(ready) > 1 or (ready and ready[0] is not self.inbox):
            self._finish(self.pool.collect(ready))
        self.intake.settle_due(now)
        self._retry_due(now)
        self.pool.maintain()
        self._dispatch()
        self._periodic(now)
        if self.journal is not None:
            self.journal.flush()

    def _timeout(self) -> float:
        now = time.monotonic()
        t = self._next_tick
        if (d := self.intake.next_deadline()) is not None:
            t = min(t, d)
        if self._retry:
            t = min(t, self._retry[0][0])
        if self.intake.has_settled and self.pool.free():
            t = now
        return max(0.0, min(t - now, TICK_S))

    def _idle(self) -> bool:
        busy = self.intake or self._claimed or self._retry or self._inflight
        return not busy

    # -- signals and commands ----------------------------------------------------
    def _on_stop_signal(self, signum: int, _frame: Any) -> None:
        self._stop_signals += 1
        self.inbox.wake()

    def _on_reload_signal(self, _signum: int, _frame: Any) -> None:
        self._reload_requested = True
        self.inbox.wake()

    def stop(self) -> None:
        """Ask for a warm stop from another thread (a second call makes it cold)."""
        self._stop_signals += 1
        self.inbox.wake()

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run `fn` on the loop's thread (the dashboard's actions); its result as a Future."""
        fut: Future[Any] = Future()
        self.inbox.put("call", fn, fut)
        return fut

    def _handle_inbox(self, now: float) -> None:
        for item in self.inbox.drain():
            kind = item[0]
            if kind == "file":
                self.intake.seen(item[1], now)
            elif kind == "closed":
                self.intake.seen(item[1], now, closed=True)
            elif kind == "gone":
                self.intake.gone(item[1])
            elif kind == "dir":
                self.intake.scan(item[1])
            elif kind == "rescan":
                self.intake.scan(self.queue_dir)
            elif kind == "call":
                fn, fut = item[1], item[2]
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn())
                    except Exception as exc:
                        fut.set_exception(exc)
        if self._reload_requested:
            self._reload_requested = False
            self._reload()

    def _reload(self) -> None:
        self.notifier.reloading()
        try:
            loaded = self._load_config()
        except ConfigError as exc:
            log.error(
                "config_reload_failed",
                config=str(self.settings.config),
                error=str(exc),
                action="keeping the previous pipeline",
            )
        else:
            self.pool.set_config(loaded)
            self.pipeline_config = loaded
            log.info("config_reloaded", config=str(self.settings.config))
            self.events.publish("config_reloaded")
        self.notifier.ready(self._status_line())

    # -- intake: see, settle, claim ------------------------------------------------
    def _claim(self, path: str, sig: Signature) -> FileRef | None:
        rel = self.intake.rel(path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if signature(st) != sig:  # changed while it waited for a worker: settle again
            self.intake.resettle(path, signature(st))
            return None
        ref = self._queued_ref(rel, st)
        reason, ref.open_path = inspect(
            path, st, self.folders.root, self.settings.zero_mtime, self.settings.empty_files
        )
        try:
            if reason:
                self._reject(ref, reason)
                return None
            ref.attempt += 1
            transition(self.folders, self.journal, ref, State.CLAIMED)
        except FileNotFoundError:
            self.journal.set_state(ref.uid, "missing", "removed before it was claimed")
            return None
        except OSError as exc:  # e.g. a sub-folder it cannot move files out of
            # The file stays in unprocessed/, untouched; the next rescan tries again, so the
            # error is logged once per --rescan-interval until someone fixes it.
            log.error("claim_failed", path=rel, state=State.QUEUED.value, error=str(exc),
                      action="left in unprocessed/, retried at the next rescan")  # fmt: skip
            self.journal.set_state(ref.uid, State.QUEUED.value, f"claim failed: {exc}")
            return None
        return ref

    def _queued_ref(self, rel: str, st: os.stat_result) -> FileRef:
        """The FileRef of a file in unprocessed/: its old row if it was returned at shutdown
        or requeued (same inode), else a new one."""
        assert self.journal is not None
        row = self.journal.find(State.QUEUED, rel)
        if row is not None and row[2] == st.st_ino:
            return FileRef(row[0], rel, State.QUEUED, row[1], rel, st.st_size, st.st_ino)
        ref = FileRef(uuid.uuid4().hex, rel, State.QUEUED, 0, rel, st.st_size, st.st_ino)
        self.journal.add(ref)
        return ref

    def reject_queued(self, rel: str, reason: str) -> FileRef:
        """Move a file waiting in unprocessed/ to failed/ with `reason` (loop thread only).

        Raises FileNotFoundError if it is not (or no longer) waiting there.
        """
        path = os.path.join(self.queue_dir, rel)
        st = os.lstat(path)
        self.intake.remove(path)
        ref = self._queued_ref(rel, st)
        self._reject(ref, reason)
        return ref

    def _reject(self, ref: FileRef, reason: str) -> None:
        transition(self.folders, self.journal, ref, State.FAILED, reason=reason)
        error = {"type": "Rejected", "message": reason}
        summary = failure_summary(ref.uid, ref.rel, ref.original, 0, ref.size, error)
        self._write_summary_now(ref, summary)
        if self.journal is not None:
            self.journal.finished(ref.uid, summary)
        self.totals["rejected"] += 1
        self.events.publish("file_failed", path=ref.rel, uid=ref.uid, error=reason)

    def _write_summary_now(self, ref: FileRef, summary: dict[str, Any]) -> None:
        """Write a summary the loop made itself (a reject, a give-up); never raises."""
        tmp = str(self.folders.tmp / f"{ref.uid}.{ref.attempt}.json")
        temps = [(tmp, f"{ref.rel}.json")]
        try:
            write_summary(tmp, summary, self._fsync)
        except OSError as write_error:
            exc: OSError | None = write_error
        else:
            exc = commit_results(self.folders.results, ref.uid, temps, self._fsync, rerun=True)
        if exc is not None:  # the reason is still in the journal and the log
            log.error("summary_write_failed", path=ref.rel, error=str(exc),
                      reason=(summary.get("error") or {}).get("message"))  # fmt: skip

    # -- dispatch and outcomes -----------------------------------------------------
    def _requeue_recovered(self, ref: FileRef) -> None:
        if ref.attempt >= self.settings.max_attempts:
            why = f"interrupted {ref.attempt} times (the daemon died while processing it)"
            self._fail_exhausted(ref, {"type": "Interrupted", "message": why})
        else:
            self._claimed.append(ref)

    def _dispatch(self) -> None:
        if self._stop_signals:
            return
        for slot in self.pool.free():
            ref = self._next_ref()
            if ref is None:
                return
            self._inflight[ref.uid] = ref
            src = ref.open_path or str(ref.path(self.folders))
            job = Job(
                ref.uid, ref.rel, ref.original, src, ref.attempt, str(self.folders.tmp), self._fsync
            )
            if not self.pool.submit(slot, job):  # the worker just died: keep the file
                del self._inflight[ref.uid]
                ref.attempt -= 1
                self._claimed.appendleft(ref)
                return
            log.info(
                "file_started",
                path=ref.rel,
                state=ref.state.value,
                attempt=ref.attempt,
                worker_pid=slot.pid,
            )
            self.events.publish(
                "file_started", path=ref.rel, uid=ref.uid, attempt=ref.attempt, worker_pid=slot.pid
            )

    def _next_ref(self) -> FileRef | None:
        if self._claimed:  # recovered, or due for a retry: already in underprocess/
            ref = self._claimed.popleft()
            ref.attempt += 1
            assert self.journal is not None
            self.journal.started(ref)
            return ref
        while (item := self.intake.pop()) is not None:
            ref = self._claim(*item)
            if ref is not None:
                return ref
        return None

    def _on_settled(self, path: str) -> None:
        self.events.publish("file_queued", path=self.intake.rel(path))

    def _on_progress(self, job: Job, bytes_read: int) -> None:
        ref = self._inflight.get(job.uid)
        size = ref.size if ref is not None else None
        self.events.publish("file_progress", path=job.rel, uid=job.uid, bytes=bytes_read, size=size)

    def _retry_due(self, now: float) -> None:
        while self._retry and self._retry[0][0] <= now:
            self._claimed.append(heapq.heappop(self._retry)[2])

    def _finish(self, done: list[tuple[Job, Outcome]]) -> None:
        for job, outcome in done:
            ref = self._inflight.pop(job.uid)
            if outcome.status in ("processed", "failed"):  # its results are committed
                self._move_done(ref, outcome.summary)
            elif outcome.status == "unstarted":  # prefetched by a worker that then died
                ref.attempt -= 1
                self._claimed.appendleft(ref)
            elif outcome.status == "vanished":
                assert self.journal is not None
                self.journal.finished(ref.uid, outcome.summary)
                self.journal.set_state(ref.uid, "missing", "removed during processing")
                log.warning(
                    "file_vanished", path=ref.rel, attempt=ref.attempt, state=State.CLAIMED.value
                )
            else:
                self._retry_or_fail(ref, outcome.summary.get("error") or {})

    def _move_done(self, ref: FileRef, summary: dict[str, Any]) -> None:
        assert self.journal is not None
        ok = summary["status"] == "processed"
        duration_ms = round(summary.get("duration_s", 0) * 1000, 1)
        err = summary.get("error") or {}
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
            self.journal.finished(ref.uid, summary)
            self.journal.set_state(ref.uid, "missing", "removed before it could be moved")
            log.warning("file_vanished", path=ref.rel, state=State.CLAIMED.value)
            return
        except OSError as exc:  # processed/ or failed/ unwritable, a full disk, …
            log.error("file_move_failed", path=ref.rel, state=State.CLAIMED.value,
                      to="processed" if ok else "failed", error=str(exc))  # fmt: skip
            if ok or ref.attempt < self.settings.max_attempts:
                self._retry_or_fail(ref, error_info(exc))  # a re-run replaces its results
            # else: it stays in underprocess/ and is recovered at the next start
            return
        self.totals["processed" if ok else "failed"] += 1
        self.totals["bytes"] += summary.get("size") or 0
        self.events.publish(
            "file_processed" if ok else "file_failed",
            path=ref.rel,
            uid=ref.uid,
            duration_s=summary.get("duration_s"),
            size=summary.get("size"),
            tags=summary.get("tags"),
            processors=summary.get("processors"),
            error=err.get("message"),
        )

    def _retry_or_fail(self, ref: FileRef, error: dict[str, Any]) -> None:
        if ref.attempt >= self.settings.max_attempts:
            self._fail_exhausted(ref, error)
            return
        delay = min(self.settings.retry_backoff * 2 ** (ref.attempt - 1), RETRY_CAP_S)
        delay *= random.uniform(0.5, 1.5)
        self._seq += 1
        heapq.heappush(self._retry, (time.monotonic() + delay, self._seq, ref))
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

    def _fail_exhausted(self, ref: FileRef, error: dict[str, Any]) -> None:
        error = {
            **error,
            "message": f"{error.get('message')} (gave up after {ref.attempt} "
            f"attempt{'s' if ref.attempt != 1 else ''})",
        }
        summary = failure_summary(ref.uid, ref.rel, ref.original, ref.attempt, ref.size, error)
        discard_temps(self.folders.tmp, ref.uid)
        self._write_summary_now(ref, summary)
        self._move_done(ref, summary)

    # -- periodic work ------------------------------------------------------------
    def _periodic(self, now: float) -> None:
        self.last_tick = now
        if now >= self._next_rescan:
            self._next_rescan = now + self.settings.rescan_interval
            self.intake.scan(self.queue_dir)
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_S
        if self.watcher is not None and not self.watcher.alive():
            try:
                self.folders.create()  # it may have died because unprocessed/ was removed
                self.watcher.restart()
            except (OSError, DaemonError) as exc:
                log.error("watcher_restart_failed", error=str(exc), action="retry in 1 s")
            else:
                self.intake.scan(self.queue_dir)
        wd = self.notifier.watchdog_interval
        if wd is not None and now >= self._next_watchdog:
            self._next_watchdog = now + wd
            self.notifier.watchdog()
        self.notifier.status(self._status_line())
        self.events.publish("status", **self.counts())

    def in_flight(self, uid: str) -> FileRef | None:
        """The file `uid` if a worker holds it now (read from other threads: a snapshot)."""
        return self._inflight.get(uid)

    def counts(self) -> dict[str, int]:
        """Files the loop holds now, by where they are in their life."""
        return {
            "queued": len(self.intake),
            "processing": len(self._inflight),
            "waiting": len(self._claimed) + len(self._retry),
            **self.totals,
        }

    def oldest_queued_age(self) -> float:
        oldest = self.intake.oldest()
        return 0.0 if oldest is None else max(0.0, time.monotonic() - oldest)

    def _status_line(self) -> str:
        c = self.counts()
        return (
            f"queued {c['queued']}, processing {c['processing']}, waiting {c['waiting']}; "
            f"done {c['processed']}, failed {c['failed'] + c['rejected']}"
        )

    # -- shutdown ------------------------------------------------------------------
    def _refuse_calls(self) -> None:
        """While stopping, answer pending dashboard actions instead of leaving them hanging."""
        for item in self.inbox.drain():
            if item[0] == "call" and item[2].set_running_or_notify_cancel():
                item[2].set_exception(DaemonError("folderd is shutting down"))

    def _shutdown(self, reason: str) -> None:
        self.ready = False
        log.info("daemon_stopping", reason=reason, in_flight=len(self._inflight))
        self.notifier.stopping()
        if self.watcher is not None:
            self.watcher.close()
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while self.pool.busy() and self._stop_signals < 2 and time.monotonic() < deadline:
            ready = wait([self.inbox, *self.pool.handles()], min(0.5, deadline - time.monotonic()))
            self._refuse_calls()
            self._finish(self.pool.collect(ready))
        if self.pool.busy():
            why = "second signal" if self._stop_signals >= 2 else "shutdown timeout"
            log.warning("shutdown_escalated", reason=why, in_flight=len(self.pool.busy()))
            for job in self.pool.kill_busy():
                self._claimed.append(self._inflight.pop(job.uid))
        returned = 0
        for ref in [*self._claimed, *(r for _, _, r in self._retry)]:
            discard_temps(self.folders.tmp, ref.uid)
            with contextlib.suppress(FileNotFoundError):
                transition(self.folders, self.journal, ref, State.QUEUED, reason="shutdown")
                returned += 1
        self._claimed.clear()
        self._retry.clear()
        self.pool.close()
        if self.journal is not None:
            self.journal.close()
        self._lock.release()
        self._refuse_calls()
        self.inbox.close()
        log.info("daemon_stopped", reason=reason, returned=returned, **self.totals)
