"""The sources as the loop drives them: what was seen, what is due, what a worker gets.

Everything here runs on the loop's thread, the only writer of the sources' journal. The
scanner's batches and the watchers' events become rows (`_seen`, `_missing`): a new or
changed version is pending until its settle window has passed, as a file in unprocessed/
is. A free worker gets the oldest due row whose file still has the version seen (else it
settles again): the file is read where it is, never moved (`claim`). What the attempt
produced is handled by `daemon.sources.finish`. A source's folder that vanishes or is
unmounted stops that source (nothing is marked deleted for it) until it is back.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from config.pipeline import PipelineConfig
from config.settings import Settings
from config.sources import SourceConfig
from daemon.attempt import Job
from daemon.events import EventBus
from daemon.fstype import fs_type, network_fs
from daemon.intake import inspect
from daemon.journal import Journal
from daemon.moves import first_free, summary_of_another
from daemon.origin import Origin
from daemon.provenance import Provenance
from daemon.settle import AFTER_CLOSE, RENAME_CHECK_S, signature
from daemon.sources.jobs import Jobs
from daemon.sources.scanner import ScanBatch, Scanner, ScanRequest, Seen, archived, inside
from daemon.sources.store import Entry, EntryState, Store, sig_text
from daemon.sources.view import SourceView
from daemon.states import Claimed, FileRef, Folders, State
from daemon.watcher import Change, FileChange, Ignored, Watcher

log = structlog.get_logger(__name__)

PREFETCH = 64  # due rows read at once
BATCHES_PER_STEP = 4  # scanner batches applied per loop step (the loop stays responsive)


@dataclass(frozen=True, slots=True)
class SourceChange:
    """A watcher's event in a source's folder (through the loop's inbox)."""

    source: str
    change: FileChange


def uid_of(source: str, rel: str) -> str:
    """A source file's identity: its source and path, so every version of it shares its
    results names, its rows (keyed by uid) and its object keys."""
    return hashlib.sha256(b"source\0" + source.encode() + b"\0" + os.fsencode(rel)).hexdigest()[:32]


class Runtime:
    """One source as the loop holds it: its folder, watcher, counters and recent errors."""

    def __init__(self, config: SourceConfig, root: str) -> None:
        self.config = config
        self.root = root
        self.archive = inside(config.archive, root)  # an archive inside the folder: not watched
        self.dev: int | None = None  # the folder's filesystem when it was first found
        self.error: str | None = None  # why it is stopped (missing, unmounted, overlaps)
        self.refused = False  # the error is the config's: never retried
        self.watcher: Watcher | None = None
        self.counts: dict[str, list[int]] = {}
        self.done: deque[tuple[float, int]] = deque()  # (monotonic, bytes) of the last minute
        self.errors: deque[tuple[float, str, str]] = deque(maxlen=5)  # (wall, path, message)
        self.next_rescan = 0.0
        self.last_scan: dict[str, Any] | None = None
        self.finalised = 0  # files deleted or archived after success since start

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def active(self) -> bool:
        return self.error is None

    def count(self, entry: Entry | None, sign: int) -> None:
        if entry is not None:
            c = self.counts.setdefault(entry.state.value, [0, 0])
            c[0] += sign
            c[1] += sign * entry.size


@dataclass
class Flight:
    """A version a worker has."""

    entry: Entry
    origin: Origin
    runtime: Runtime


class Sources:
    """Every source, their rows, their jobs; the loop's hooks (see `daemon.core`)."""

    def __init__(
        self,
        settings: Settings,
        folders: Folders,
        journal: Journal,
        events: EventBus,
        ignored: Ignored,
        put: Callable[[Any], None],
        wake: Callable[[], None],
        too_long: Callable[[str], str | None],
    ) -> None:
        self.settings = settings
        self.folders = folders
        self.journal = journal
        self.events = events
        self._ignored = ignored
        self._put = put
        self._too_long = too_long  # a name with no room for its results' (the queue's rule)
        # beside the journal; in shared mode each instance's own (sources are not watched
        # there, but the file must not be one that several instances open over NFS)
        name = f"sources-{folders.instance}.sqlite3" if folders.instance else "sources.sqlite3"
        self.store = Store(folders.journal.with_name(name))
        self.jobs = Jobs(self.store)
        self.scanner = Scanner(self.store.path, ignored, wake)
        self.by_name: dict[str, Runtime] = {}
        self.inflight: dict[str, Flight] = {}
        self._due: deque[Entry] = deque()
        self._quick_renames = not (settings.settle_renames or settings.poll)
        self._watching = False
        self._totals = self.store.counts()
        # a version that must not be processed at all (empty, mtime 0: `intake.inspect`)
        # fails at once with its reason; `daemon.sources.finish` sets this
        self.reject: Callable[[Job, Flight, str], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, config: PipelineConfig, watch: bool) -> None:
        """Recover what a dead run left running, resume jobs, add the sources, walk them."""
        self._watching = watch
        recovered = self.store.recover()
        if recovered:
            log.info("source_versions_recovered", versions=recovered, action="run again")
        self.scanner.start()
        for name, path in self.store.adhoc():
            self.add(SourceConfig(name=name, path=Path(path), adhoc=True))
        self.use(config)
        for job in self.jobs.resume():
            rt = self.by_name.get(job.source)
            if rt is None:
                self.jobs.scanned(job.id, f"source {job.source!r} is no longer configured")
                continue
            self.jobs.scan_started(job)
            self.scanner.request(ScanRequest(rt.config, rt.root, job=job.id, glob=job.glob))

    def use(self, config: PipelineConfig) -> None:
        """The declared sources of `config` (start, reload): new ones added and walked,
        changed ones replaced, removed ones stopped (their rows and results are kept)."""
        wanted = {s.name: s for s in config.sources}
        for name, rt in list(self.by_name.items()):
            if not rt.config.adhoc and (name not in wanted or wanted[name] != rt.config):
                self._remove(rt)
        for name, source in wanted.items():
            if name not in self.by_name:
                self.add(source)

    def add(self, source: SourceConfig) -> None:
        root = os.path.realpath(source.path)
        rt = self.by_name[source.name] = Runtime(source, root)
        rt.counts = {k: list(v) for k, v in self._totals.get(source.name, {}).items()}
        if self.folders.instance:
            rt.error, rt.refused = "sources are not watched in shared mode (--shared)", True
        elif why := self._overlap(root):
            rt.error, rt.refused = why, True
        if rt.refused:
            log.error("source_refused", source=source.name, path=root, reason=rt.error)
            return
        log.info("source_added", source=source.name, path=root, adhoc=source.adhoc)
        self._check_root(rt, time.monotonic())

    def _overlap(self, root: str) -> str | None:
        folders = (("the watch_dir", self.folders.root), ("results", self.folders.results))
        for what, other in folders:
            o = os.path.realpath(other)
            if root == o or root.startswith(o + os.sep):
                return f"{root} lies inside {what} ({o})"
            if o.startswith(root + os.sep):
                return f"{what} ({o}) lies inside the source {root}: folderd would write in it"
        return None

    def _remove(self, rt: Runtime) -> None:
        self._stop_watching(rt)
        del self.by_name[rt.name]
        self._due = deque(e for e in self._due if e.source != rt.name)
        log.info("source_removed", source=rt.name, action="its rows and results are kept")

    def close(self) -> None:
        for rt in self.by_name.values():
            self._stop_watching(rt)
        self.scanner.stop()
        self.jobs.save()
        self.store.close()

    # -- the folder and its watcher -------------------------------------------------------
    def _check_root(self, rt: Runtime, now: float) -> None:
        """Whether the source's folder is there, and the one it was (not an empty mount
        point left by an unmount); a source that comes back is walked again."""
        try:
            st = os.stat(rt.root)
            why = None if stat.S_ISDIR(st.st_mode) else "not a folder"
            if why is None and rt.dev is not None and st.st_dev != rt.dev:
                why = "another filesystem than before (unmounted?)"
        except OSError as exc:
            why = exc.strerror or str(exc)
        if why is not None:
            if rt.error is None:
                action = "nothing of it processed or marked deleted till it is back"
                log.error("source_unavailable", source=rt.name, path=rt.root, reason=why,
                          action=action)  # fmt: skip
                self._stop_watching(rt)
            rt.error = f"{rt.root}: {why}"
            return
        if rt.dev is None:
            rt.dev = st.st_dev
        if rt.error is not None or rt.next_rescan == 0.0:
            if rt.error is not None:
                log.info("source_available", source=rt.name, path=rt.root)
            rt.error = None
            self._watch(rt)
            self.rescan(rt, now)

    def _watch(self, rt: Runtime) -> None:
        if not self._watching or rt.config.adhoc or rt.watcher is not None:
            return
        kind = rt.config.watch
        if kind == "auto":
            kind = "poll" if self.settings.poll or network_fs(fs_type(Path(rt.root))) else "inotify"
        if kind == "poll":  # rescans are the polling: watchdog's poller holds every file
            return
        name = rt.name
        rt.watcher = Watcher(
            Path(rt.root), lambda ch: self._put(SourceChange(name, ch)), self._ignored,
            on_overflow=lambda: self._put(SourceChange(name, FileChange(Change.DIR, ""))),
        )  # fmt: skip
        try:
            rt.watcher.start()
        except OSError as exc:
            log.error("source_watch_failed", source=rt.name, error=str(exc),
                      action=f"rescans every {rt.config.rescan_s} s only")  # fmt: skip
            rt.watcher = None
            return
        if rt.watcher.poll:  # out of inotify watches: watchdog's poller would hold every
            self._stop_watching(rt)  # file of the source in memory; the rescans poll instead
            log.warning("source_watch_polling", source=rt.name,
                        action=f"rescans every {rt.config.rescan_s} s only")  # fmt: skip

    def _stop_watching(self, rt: Runtime) -> None:
        if rt.watcher is not None:
            rt.watcher.close()
            rt.watcher = None

    def rescan(self, rt: Runtime, now: float) -> None:
        rt.next_rescan = now + rt.config.rescan_s
        if not rt.config.adhoc:
            self.scanner.request(ScanRequest(rt.config, rt.root))

    # -- the loop's steps -----------------------------------------------------------------
    def step(self, now: float) -> None:
        """Apply what the scanner found (a few batches a step), start the rescans due."""
        for _ in range(BATCHES_PER_STEP):
            try:
                batch = self.scanner.out.get_nowait()
            except Exception:  # queue.Empty
                break
            self._apply(batch)
        for rt in list(self.by_name.values()):
            if rt.active and now >= rt.next_rescan:
                self.rescan(rt, now)

    def tick(self, now: float) -> None:
        """Once a second: the folders checked, dead watchers restarted."""
        for rt in list(self.by_name.values()):
            if rt.refused:
                continue
            self._check_root(rt, now)
            w = rt.watcher
            if w is not None and (not w.alive() or w.moved()):
                try:
                    w.restart()
                except OSError as exc:
                    log.error("source_watch_failed", source=rt.name, error=str(exc))
                self.rescan(rt, now)

    def _apply(self, batch: ScanBatch) -> None:
        rt = self.by_name.get(batch.source)
        if rt is None:
            return
        settle = self.settings.settle
        for seen in batch.seen:
            self._seen(rt, seen, time.time() + settle, batch.job)
        if rt.active:
            for rel in batch.missing:
                self._missing(rt, rel)
        if batch.done is not None:
            d = batch.done
            rt.last_scan = {"files": d.files, "bytes": d.bytes, "seconds": round(d.seconds, 3),
                            "full": d.full, "error": d.error, "at": time.time()}  # fmt: skip
            if batch.job is not None:
                self.jobs.scanned(batch.job, d.error)

    def changed(self, msg: SourceChange, now: float) -> None:
        """A watcher's event: a file settles again (or is gone, or a folder is walked)."""
        rt = self.by_name.get(msg.source)
        if rt is None or not rt.active:
            return
        change, path = msg.change.change, msg.change.path
        rel = path[len(rt.root) + 1 :] if path.startswith(rt.root + os.sep) else ""
        if archived(rt.archive, rel):  # moved there once processed: never again
            return
        if change is Change.DIR or (change is Change.RENAMED and os.path.isdir(path)):
            self.scanner.request(ScanRequest(rt.config, rt.root, under=rel))
            return
        if not rel or not rt.config.wants(rel):
            return
        if rt.config.hash or change is Change.GONE:  # the scanner hashes; or confirms
            self.scanner.request(ScanRequest(rt.config, rt.root, paths=(rel,)))
            return
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        if not stat.S_ISREG(st.st_mode):
            return
        window = self.settings.settle
        if change is Change.CLOSED:
            window *= AFTER_CLOSE
        elif change is Change.RENAMED and self._quick_renames:
            window = min(RENAME_CHECK_S, window)
        self._seen(rt, Seen(rel, signature(st)), time.time() + window, None)

    # -- rows -----------------------------------------------------------------------------
    def write(self, rt: Runtime | None, old: Entry | None, new: Entry | None) -> None:
        """Store `new` (None: remove `old`'s row), keeping the counters."""
        if new is None:
            if old is not None:
                self.store.delete(old.source, old.rel)
        elif new != old:
            self.store.put(new)
        if rt is not None and new != old:
            rt.count(old, -1)
            rt.count(new, +1)

    def _seen(self, rt: Runtime, seen: Seen, due: float, job: int | None) -> None:
        old = self.store.get(rt.name, seen.rel)
        new = after_seen(old, rt, seen, due)
        if job is not None:
            new = replace(new, job=job)
            if new.state is EntryState.CANCELLED:
                new = replace(new, state=EntryState.PENDING, due=due)
        self.write(rt, old, new)
        if job is not None:
            self.jobs.seen(job, new)

    def _missing(self, rt: Runtime, rel: str) -> None:
        """The file is gone from the source: its row says so, its results stay."""
        old = self.store.get(rt.name, rel)
        if old is None or old.state in (EntryState.DELETED, EntryState.RUNNING):
            return  # a running one is settled by its outcome
        self._check_root(rt, time.monotonic())  # gone with its folder (moved away, a file in
        if not rt.active:  # its place, unmounted): the source stops, nothing is deleted
            return
        self.write(rt, old, replace(old, state=EntryState.DELETED))
        uid = uid_of(rt.name, rel)
        self.journal.set_state(uid, State.MISSING, "deleted at the source")
        log.info("source_file_deleted", source=rt.name, path=rel, results="kept")
        if old.state is EntryState.PENDING:
            self.jobs.finished(old.job, "gone", old.size)

    # -- dispatch -------------------------------------------------------------------------
    def active_names(self) -> list[str]:
        return [name for name, rt in self.by_name.items() if rt.active]

    def next_job(self, provenance: Provenance | None = None) -> Job | None:
        """The next due version for a free worker, claimed; None if none is due.
        `provenance`: the config in use's, for its summary (as a queued file's)."""
        now = time.time()
        for _ in range(PREFETCH):
            if not self._due:
                self._due.extend(self.store.due(now, PREFETCH, self.active_names()))
                if not self._due:
                    return None
            job = self._claim(self._due.popleft(), now, provenance)
            if job is not None:
                return job
        return None

    def _claim(self, seen: Entry, now: float, provenance: Provenance | None) -> Job | None:
        rt = self.by_name.get(seen.source)
        e = self.store.get(seen.source, seen.rel)
        if rt is None or not rt.active or e is None or e.state is not EntryState.PENDING:
            return None
        if e.due > now:
            return None
        uid = uid_of(rt.name, e.rel)
        if uid in self.inflight:
            return None
        path = os.path.join(rt.root, e.rel)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            self._missing(rt, e.rel)
            return None
        except OSError as exc:  # unreadable metadata: looked at again after a while
            self.write(rt, e, replace(e, due=now + max(self.settings.settle, 1.0) * 4,
                                      error=f"cannot stat: {exc.strerror or exc}"))  # fmt: skip
            return None
        sig = signature(st)
        if not stat.S_ISREG(st.st_mode):
            self._missing(rt, e.rel)
            return None
        if sig != e.sig:  # changed since it was seen: it settles again
            self.write(rt, e, replace(e, sig=sig, due=now + self.settings.settle))
            return None
        why, _ = inspect(path, st, Path(rt.root), self.settings.zero_mtime,
                         self.settings.empty_files)  # fmt: skip
        why = why or self._too_long(e.rel)
        running = replace(e, state=EntryState.RUNNING, error=None)
        self.write(rt, e, running)
        origin = Origin(rt.name, e.rel, e.version + 1, *sig, sha256=e.sha256)
        # its results name: every version's the same, never another input's (a file
        # dropped into unprocessed/sources/<name>/ may have taken it first: then `~N`)
        rel = first_free(f"{rt.config.results_prefix}/{e.rel}",
                         lambda r: summary_of_another(self.folders, r, uid))  # fmt: skip
        attempt = e.attempts + 1
        job = Job(uid, rel, e.rel, path, attempt, str(self.folders.tmp),
                  not self.settings.no_fsync, st.st_size, Claimed.of(st),
                  rerun=True, origin=origin, provenance=provenance)  # fmt: skip
        self.inflight[uid] = Flight(running, origin, rt)
        ref = FileRef(uid, rel, State.QUEUED, attempt, e.rel, st.st_size, 0)
        if self.journal.get(uid) is None:
            self.journal.add(ref)
        self.journal.started(ref)
        log.info("source_version_started", source=rt.name, path=e.rel, version=origin.number,
                 attempt=attempt)  # fmt: skip
        if why is not None and self.reject is not None:
            self.reject(job, self.inflight[uid], why)
            return None
        self.events.publish("file_started", path=rel, uid=uid, attempt=attempt, source=rt.name)
        return job

    def unsubmitted(self, job: Job) -> None:
        """The worker was gone before it got `job`: pending again, not counted."""
        flight = self.inflight.pop(job.uid, None)
        if flight is not None:
            e = self.store.get(flight.entry.source, flight.entry.rel)
            if e is not None and e.state is EntryState.RUNNING:
                self.write(flight.runtime, e, replace(e, state=EntryState.PENDING, due=0.0))

    # -- what the loop and the dashboard read ---------------------------------------------
    def next_deadline(self) -> float | None:
        """Monotonic time of the next pending row's due time (None: none pending)."""
        due = self.store.next_due(self.active_names())
        if due is None:
            return None
        return time.monotonic() + max(0.0, due - time.time())

    def busy(self) -> bool:
        """Whether anything is left to do (drain mode waits for it)."""
        pending = sum(rt.counts.get(EntryState.PENDING.value, [0])[0]
                      for rt in self.by_name.values() if rt.active)  # fmt: skip
        scanning = any(self.scanner.scanning(name) for name in self.by_name)
        return bool(self.inflight or pending or scanning or not self.scanner.out.empty())

    def flush(self) -> None:
        self.jobs.save()
        self.store.flush()

    def view(self) -> tuple[SourceView, ...]:
        now = time.monotonic()
        return tuple(SourceView.of(rt, now, self.scanner.scanning(rt.name))
                     for rt in self.by_name.values())  # fmt: skip


def after_seen(old: Entry | None, rt: Runtime, seen: Seen, due: float) -> Entry:
    """The row once `seen` is the version last seen."""
    if old is None:
        return Entry(rt.name, seen.rel, EntryState.PENDING, seen.sig, seen.sha256, due, 0, None,
                     None, 0, None, None)  # fmt: skip
    if old.state is EntryState.RUNNING:  # its outcome compares the version it ran with this
        return replace(old, sig=seen.sig, sha256=seen.sha256 or old.sha256)
    same_content = rt.config.hash and seen.sha256 is not None and seen.sha256 == old.done_sha256
    if same_content and old.state in (EntryState.DONE, EntryState.FAILED):
        # a hashed source: new metadata, the same bytes as the version processed: no new one
        return replace(old, sig=seen.sig, sha256=seen.sha256, done_sig=sig_text(seen.sig))
    unchanged = seen.sig == old.sig and (not rt.config.hash or seen.sha256 == old.sha256)
    if unchanged and old.state is not EntryState.DELETED:
        return old
    return replace(old, state=EntryState.PENDING, sig=seen.sig, sha256=seen.sha256, due=due,
                   attempts=0, error=None)  # fmt: skip
