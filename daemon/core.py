"""The daemon's main loop: one thread that owns every file's state.

The loop waits on the inbox (watcher events, dashboard calls) and the workers' pipes and
sentinels; each iteration is the same short list of steps (`_step`); signal handlers only
set flags. Workers do the heavy, parallel part (read, pipeline, write and commit results);
the loop the ordered part (claim: `daemon.claims`, the input's moves: `daemon.outcomes`,
the journal), so there is never a race over a file's state. An environment fault pauses
claiming (`daemon.faults`) until a probe finds it cleared.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import structlog

from config import ConfigError
from config.settings import Settings
from daemon.attempt import Job, Outcome, Progress
from daemon.batches import Batches
from daemon.claims import Claimer
from daemon.commit import discard_temps
from daemon.duplicates import Duplicates
from daemon.errors import DaemonError
from daemon.events import EventBus
from daemon.faults import Pause, PauseReason
from daemon.identity import single_uid
from daemon.inbox import Call, Inbox, Rescan, Waiter
from daemon.intake import Intake
from daemon.markers import Gate
from daemon.memory import cap_mb
from daemon.moves import transition
from daemon.notify import SystemdNotifier
from daemon.outcomes import Outcomes, Waiting
from daemon.pool import WorkerPool
from daemon.provenance import recorded
from daemon.recovery import open_watch_dir, rebuild, recover
from daemon.reports import RunReport
from daemon.shared.instance import Shared, shared_folders
from daemon.snapshot import Snapshot
from daemon.sources.finish import Finisher
from daemon.sources.runtime import SourceChange, Sources
from daemon.states import FileRef, State
from daemon.watcher import Change, FileChange, Watcher, ignore_matcher
from daemon.webhooks import Webhooks
from processors import LoadedPipeline

log = structlog.get_logger(__name__)

TICK_S = 1.0  # health/heartbeat period; the loop also wakes for every event
FLUSH_S = 0.02  # the journal is committed (and the snapshot taken) at most this often


class Daemon:
    """The loop and the parts it drives. Constructing it takes watch_dir's lock and opens
    the journal; `run()` releases both when it returns."""

    def __init__(
        self,
        settings: Settings,
        pipeline: LoadedPipeline,
        load_config: Callable[[], LoadedPipeline],
        *,
        events: EventBus | None = None,
        notifier: SystemdNotifier | None = None,
        worker_init: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.folders = shared_folders(settings)  # per-instance claims with --shared
        self.queue_dir = str(self.folders.of(State.QUEUED))
        self.events = events or EventBus()
        self.notifier = notifier or SystemdNotifier.from_environ({})
        self._load_config = load_config
        self._fsync = not settings.no_fsync
        self._ignored = ignore_matcher(settings.ignore_patterns)
        # The polling observer (NFS) sees no real renames: there, every file settles.
        self._quick_renames = not (settings.settle_renames or settings.poll)
        self._lock, self.journal = open_watch_dir(self.folders)
        self.shared = (  # leased
            Shared(self.folders, settings.lease, self.journal) if settings.shared else None
        )
        self.inbox, self._waiter = Inbox(), Waiter()
        self.intake = Intake(self.queue_dir, settings.settle, self._ignored, self._on_settled,
                             pipeline.config.priority, self._on_unqueued)  # fmt: skip
        self.waiting = Waiting()
        self.pause = Pause()
        self._min_free = settings.min_disk_free_mb << 20
        self.outcomes = Outcomes(
            self.folders, self.journal, self.events, self.waiting, self.pause,
            max_attempts=settings.max_attempts, retry_backoff=settings.retry_backoff,
            fsync=self._fsync,
        )  # fmt: skip
        self.claimer = Claimer(
            self.folders, self.journal, self.intake, self.outcomes,
            zero_mtime=settings.zero_mtime, empty_files=settings.empty_files, pipeline=pipeline,
            shared=self.shared,
        )  # fmt: skip
        self.pipeline = pipeline
        self.outcomes.provenance = prov = recorded(self.journal, settings.config, pipeline,
                                                   self.folders.instance)  # fmt: skip
        self.webhooks = Webhooks(self.journal, prov.instance, prov.host)  # `notify`
        self.webhooks.use(pipeline.config.notify)
        self.report = RunReport()  # what --drain prints (and notifies) at its end
        self.drain_report: dict[str, Any] | None = None
        self.webhooks.attach(self.outcomes, self.pause, self.events, self.report)
        self.batches = Batches(self.journal, self.queue_dir, self.events, self.webhooks.report)
        self.outcomes.on_done.append(self.batches.finished)
        self.intake.gate = Gate(self.queue_dir, pipeline.config.markers, self.batches,
                                lambda rel: self.journal.find(State.QUEUED, rel) is not None,
                                self._ignored)  # fmt: skip
        self.worker_init = worker_init  # what every spawned process runs first (logging)
        self.duplicates = Duplicates(self.journal, settings.skip_duplicates)
        self.pool = WorkerPool(
            settings.workers, pipeline, settings.trace, on_progress=self._on_progress,
            worker_init=worker_init, on_started=self._on_started,
            stall_timeout=settings.stall_timeout, stall_kill_after=settings.stall_kill_after,
            memory_mb=cap_mb(settings.worker_memory_mb, settings.workers),
        )  # fmt: skip
        self.watcher: Watcher | None = None
        # folders watched in place (daemon.sources): the same workers, pause and journal
        self.sources = Sources(settings, self.folders, self.journal, self.events, self._ignored,
                               self.inbox.put, self.inbox.wake, self.claimer.too_long)  # fmt: skip
        self._finisher = Finisher(self.sources, self.outcomes)
        self._inflight: dict[str, FileRef] = {}
        self._stop_signals = 0
        self._reload_requested = False
        self._next_rescan = 0.0
        self._next_tick = self._next_flush = 0.0
        self._flush_due = False
        self._next_watchdog = 0.0
        self.started_at = time.time()  # a timestamp; uptime counts from `self.started`
        self.started = time.monotonic()
        self.ready = False
        self.snapshot = self._take_snapshot()

    # -- the loop ----------------------------------------------------------------
    def run(self, *, drain: bool = False, on_ready: Callable[[], None] | None = None) -> int:
        """Run until a stop signal (or, with drain=True, until the queue is empty).

        `on_ready` runs once recovery is done and the watcher is up, before systemd is told
        READY=1 (main.py starts the dashboard there).
        """
        reason = "signal"
        try:
            self._start(drain, on_ready)
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

    def _start(self, drain: bool, on_ready: Callable[[], None] | None) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        # the uid of a claim the journal lost: as the claim would have made it
        if self.shared:
            lost_uid = self.shared.identity.new_uid
        else:
            lost_uid = functools.partial(single_uid, known=self.journal.get)
        for left in recover(self.folders, self.journal, lost_uid, self.webhooks.file_done):
            self.outcomes.recovered(left.ref, left.committed)
        self.batches.load()  # open batch folders go on (daemon.batches)
        self.pool.start()
        self.webhooks.start()
        if not drain:
            self.watcher = Watcher(
                self.folders.of(State.QUEUED), self.inbox.put, self._ignored,
                poll=self.settings.poll, poll_interval=self.settings.poll_interval,
                on_overflow=lambda: self.inbox.put(Rescan()),
            )  # fmt: skip
            self.watcher.start()
        self.intake.scan(self.queue_dir)
        self._next_rescan = time.monotonic() + self.settings.rescan_interval
        self.sources.start(self.pipeline.config, watch=not drain)
        if on_ready is not None:
            on_ready()
        self.ready = True
        self.snapshot = self._take_snapshot()
        log.info("daemon_started", watch_dir=str(self.folders.root), pid=os.getpid(),
                 workers=self.settings.workers, mode="drain" if drain else "watch",
                 fsync=self._fsync, settle_s=self.settings.settle)  # fmt: skip
        self.notifier.ready(self._status_line())

    def _step(self) -> None:
        ready = self._waiter.wait([self.inbox, *self.pool.handles()], self._timeout())
        now = time.monotonic()
        self.events.hold()  # heard of only once the journal and snapshot say so
        self._handle_inbox(now)
        self.sources.step(now)
        if len(ready) > 1 or (ready and ready[0] is not self.inbox):
            self._finish(self.pool.collect(ready))
        self.intake.settle_due(now)
        self.waiting.release_due(now)
        self.pool.maintain()
        self._dispatch()
        self._periodic(now)
        self._flush_journal(now)

    def _flush_journal(self, now: float) -> None:
        """The journal, the snapshot and the events held, together and at most every
        FLUSH_S: a burst's moves share a commit (a lone file's comes within FLUSH_S)."""
        self._flush_due = now < self._next_flush
        if not self._flush_due:
            self._next_flush = now + FLUSH_S
            self.journal.flush()
            self.sources.flush()
            self.snapshot = self._take_snapshot()
            self.events.release()

    def _timeout(self) -> float:
        now = time.monotonic()
        t = self._next_tick
        if self._flush_due:
            t = min(t, self._next_flush)
        free = self.pool.next_free() is not None and not self.pause
        source_due = self.sources.next_deadline() if free else None  # busy: workers wake us
        for due in (self.intake.next_deadline(), self.waiting.next_due(), source_due):
            if due is not None:
                t = min(t, due)
        if self.intake.has_settled and self.pool.next_free() is not None and not self.pause:
            t = now
        return max(0.0, min(t - now, TICK_S))

    def _idle(self) -> bool:
        return not (self.intake or self.waiting or self._inflight or self.sources.busy())

    # -- signals and commands ----------------------------------------------------
    def _on_stop_signal(self, _signum: int, _frame: Any) -> None:
        self.stop()

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
        self.inbox.put(Call(fn, fut))
        return fut

    def _handle_inbox(self, now: float) -> None:
        for msg in self.inbox.drain():
            match msg:
                case FileChange(Change.CHANGED, path):
                    self.intake.seen(path, now)
                case FileChange(Change.CLOSED, path):
                    self.intake.seen(path, now, closed=True)
                case FileChange(Change.RENAMED, path):
                    self.intake.seen(path, now, renamed=self._quick_renames)
                case FileChange(Change.GONE, path):
                    self.intake.gone(path)
                case FileChange(Change.DIR, path):
                    self.intake.scan(path)
                case Rescan():
                    self.intake.scan(self.queue_dir)
                case SourceChange():
                    self.sources.changed(msg, now)
                case Call():  # an action's outcome is committed at once
                    msg.run()
                    self._next_flush = 0.0
        if self._reload_requested:
            self._reload_requested = False
            self._reload()

    def _reload(self) -> None:
        self.notifier.reloading()
        try:
            loaded = self._load_config()
        except ConfigError as exc:
            log.error("config_reload_failed", config=str(self.settings.config), error=str(exc),
                      action="keeping the previous pipeline")  # fmt: skip
        else:
            self.pool.set_config(loaded)
            self.claimer.use(loaded)
            self.intake.rules = loaded.config.priority
            self.sources.use(loaded.config)
            self.pipeline = loaded
            self.outcomes.provenance = recorded(self.journal, self.settings.config, loaded,
                                                self.folders.instance)  # fmt: skip
            self.webhooks.use(loaded.config.notify)
            self.intake.use_markers(loaded.config.markers)
            log.info("config_reloaded", config=str(self.settings.config))
            self.events.publish("config_reloaded")
        self.notifier.ready(self._status_line())

    # -- dispatch and outcomes -----------------------------------------------------
    def _dispatch(self) -> None:
        if self._stop_signals or self.pause or (self.shared and self.shared.conflict):
            return
        while (slot := self.pool.next_free()) is not None:
            ref = self._next_ref()
            if ref is None:  # the queue first; then a source's due version, if any
                source_job = self.sources.next_job(self.outcomes.provenance)
                if source_job is None:
                    return
                if not self.pool.submit(slot, source_job):
                    self.sources.unsubmitted(source_job)
                    return
                continue
            self._inflight[ref.uid] = ref
            job = Job.of(ref, self.folders, self._fsync, self.duplicates.earlier(ref.size),
                         self.outcomes.provenance)  # fmt: skip
            if not self.pool.submit(slot, job):  # the worker just died: keep the file
                del self._inflight[ref.uid]
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

    def _finish(self, done: list[tuple[Job, Outcome]]) -> None:
        for job, outcome in done:
            if job.origin is not None:  # a source's version
                self._finisher.finish(job, outcome)
                continue
            self.outcomes.finish(self._inflight.pop(job.uid), outcome)

    def _on_settled(self, path: str, priority: int) -> None:
        self.events.publish("file_queued", path=self.intake.rel(path), priority=priority)

    def _on_unqueued(self, path: str) -> None:  # claimed (maybe under a `~N` name), or not
        self.events.publish("file_unqueued", path=self.intake.rel(path))

    def _on_started(self, job: Job, worker_pid: int | None) -> None:
        """Its worker began it now (a job queued behind another starts later, or never,
        if it is taken back from a frozen or stalled worker)."""
        ref = self._inflight.get(job.uid)
        state = ref.state.value if ref is not None else State.CLAIMED.value
        log.info("file_started", path=job.rel, state=state, attempt=job.attempt,
                 worker_pid=worker_pid)  # fmt: skip
        self.events.publish(
            "file_started", path=job.rel, uid=job.uid, attempt=job.attempt, worker_pid=worker_pid
        )

    def _on_progress(self, job: Job, progress: Progress) -> None:
        counts = progress.counts or {}
        self.events.publish(
            "file_progress", path=job.rel, uid=job.uid, bytes=progress.bytes_read,
            size=job.size, tags=counts.get("tags"), processors=counts.get("processors"),
        )  # fmt: skip

    # -- periodic work ------------------------------------------------------------
    def _periodic(self, now: float) -> None:
        if self.shared is not None:  # renewals may be due more often than ticks
            for ref in self.shared.tick(now, self.counts()):  # a dead peer's claims, now ours
                self.outcomes.recovered(ref)
        if now >= self._next_rescan:
            self._next_rescan = now + self.settings.rescan_interval
            self.intake.scan(self.queue_dir)
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_S
        self._finish(self.pool.supervise())  # frozen, stalled: their queued jobs taken back
        self.intake.check_markers()
        self.sources.tick(now)
        if self.journal.replaced():  # deleted under us: a new one, its history rebuilt
            self.journal.reopen()
            rebuild(self.folders, self.journal)
        if self.watcher is not None and self.watcher.moved() and not self.pause:
            # unprocessed/ moved away or deleted: the machine's, like a vanished results
            # folder. The probe makes it again; then the watcher follows (below).
            self.pause.hold(PauseReason("intake_moved", f"{self.queue_dir} was moved away "
                            "or deleted; waiting to make it again"), now)  # fmt: skip
        if self.pause.check(self.folders, self._min_free, now):
            self.intake.scan(self.queue_dir)  # claims that failed are still in unprocessed/
        if self.watcher is not None and (
            not self.watcher.alive() or (self.watcher.moved() and not self.pause)
        ):
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

    def counts(self) -> dict[str, int]:
        """Files the loop holds now, by where they are in their life."""
        return {
            "queued": len(self.intake),
            "processing": len(self._inflight),
            "waiting": len(self.waiting),
            **self.outcomes.totals,
        }

    def _status_line(self) -> str:
        c = self.counts()
        paused = f"paused: {self.pause.reason.message}; " if self.pause.reason else ""
        return (
            f"{paused}queued {c['queued']}, processing {c['processing']}, waiting "
            f"{c['waiting']}; done {c['processed']}, failed {c['failed'] + c['rejected']}"
        )

    def _take_snapshot(self) -> Snapshot:
        w = self.watcher
        return Snapshot(
            taken=time.monotonic(), ready=self.ready, started_at=self.started_at,
            started=self.started,
            counts=self.counts(), oldest_queued=self.intake.oldest(),
            watcher_kind=w.kind if w else None, watcher_alive=w.alive() if w else False,
            watcher_restarts=w.restarts if w else 0, watcher_overflows=w.overflows if w else 0,
            workers=len(self.pool.slots), workers_alive=self.pool.alive_count(),
            worker_deaths=self.pool.deaths, worker_pids=tuple(s.pid for s in self.pool.slots),
            workers_frozen=self.pool.frozen,
            journal_healthy=self.journal.healthy, journal_error=self.journal.last_error,
            journal_generation=self.journal.generation,
            paused=self.pause.reason, paused_since=self.pause.since,
            pauses=dict(self.pause.counts), in_flight=self.pool.in_flight(),
            stuck=self.intake.stuck(), sinks=self.outcomes.sinks.view(self.pipeline.config),
            watch_dir=str(self.folders.root), results_dir=str(self.folders.results),
            pipeline=self.pipeline, shared=self.shared.view() if self.shared else None,
            stalled=self.pool.stalled(), stall_kills=self.pool.stall_kills,
            memory_exceeded=self.pool.memory_exceeded, worker_memory_mb=self.pool.memory_mb,
            sources=self.sources.view(), source_jobs=self.sources.jobs.views(),
        )  # fmt: skip

    # -- shutdown ------------------------------------------------------------------
    def _shutdown(self, reason: str) -> None:
        self.ready = False
        self.snapshot = self._take_snapshot()
        log.info("daemon_stopping", reason=reason, in_flight=len(self._inflight))
        self.notifier.stopping()
        if self.watcher is not None:
            self.watcher.close()
        self._finish_in_flight()
        returned = 0
        for ref in self.waiting.take_all():
            discard_temps(self.folders.tmp, ref.uid)
            with contextlib.suppress(FileNotFoundError):
                transition(self.folders, self.journal, ref, State.QUEUED, reason="shutdown")
                returned += 1
        self.pool.close()
        if reason == "drained":
            held = len(self.intake.gate) if self.intake.gate is not None else 0
            self.drain_report = self.report.as_json("drain", waiting_for_marker=held)
            self.webhooks.report("drain.done", self.drain_report)
        self.sources.close()
        self.journal.close()
        self.webhooks.close(self.settings.shutdown_timeout)
        self.events.release()
        if self.shared is not None:
            self.shared.stop()
        self._lock.release()
        self.inbox.refuse_calls(DaemonError("folderd is shutting down"))
        self.inbox.close()
        log.info("daemon_stopped", reason=reason, returned=returned, **self.outcomes.totals)

    def _finish_in_flight(self) -> None:
        """Warm stop: let in-flight files finish, up to the shutdown timeout or a second
        signal; then (cold) kill their workers and hand the files back to waiting."""
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while self.pool.busy() and self._stop_signals < 2 and time.monotonic() < deadline:
            ready = self._waiter.wait([self.inbox, *self.pool.handles()],
                                      max(0.0, min(0.5, deadline - time.monotonic())))  # fmt: skip
            self.inbox.refuse_calls(DaemonError("folderd is shutting down"))
            self._finish(self.pool.collect(ready))
        if self.pool.busy():
            why = "second signal" if self._stop_signals >= 2 else "shutdown timeout"
            log.warning("shutdown_escalated", reason=why, in_flight=len(self.pool.busy()))
            for job in self.pool.kill_busy():
                if job.origin is not None:  # pending again at the next start
                    continue
                self.waiting.put(self._inflight.pop(job.uid))
