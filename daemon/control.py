"""What the dashboard may see and do: a snapshot of the daemon, and its actions.

Reads (`snapshot`, `status()`) are safe from any thread: the loop publishes a frozen
`Snapshot` after every step. Actions (`requeue`, `cancel`, `accept_upload`) run on the
daemon's loop thread through `Daemon.call`, so a file's state is only ever changed by the
thread that owns it. The dashboard reads the journal with its own read-only connections
(`journal.connect`).

Names cross this boundary as `formats.names.shown()` writes them (the journal's form): an
action's name is `parsed()` on the way in and every name it returns is shown.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import DaemonError
from daemon.moves import admit, shorten, transition
from daemon.schema import connect
from daemon.snapshot import Snapshot
from daemon.sources import actions as source_actions
from daemon.states import FileRef, Folders, State
from formats.names import parsed, shown
from processors import file_routes, readers
from processors.base import ProcessorError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from config.settings import Settings
    from daemon.core import Daemon
    from daemon.events import EventBus

_UID = re.compile(r"[0-9a-f]{32}")
REQUEUE_CHUNK = 200  # requeues per call on the daemon's thread
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


class ActionError(DaemonError):
    """An action the dashboard asked for cannot be done; `status` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def safe_upload_name(name: str, max_bytes: int = 200) -> str:
    """A file name safe to create in unprocessed/: no path, no control characters, not
    hidden, not empty, at most `max_bytes` of UTF-8 (its extension kept). Raises
    ActionError(400) when nothing usable is left."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if not name or name in {".", ".."}:
        raise ActionError("the file name is empty once unsafe characters are removed", 400)
    return shorten(name, max_bytes)


class DaemonAPI:
    def __init__(self, daemon: Daemon, action_timeout: float = 10.0) -> None:
        self._d = daemon
        self._timeout = action_timeout

    @property
    def settings(self) -> Settings:
        return self._d.settings

    @property
    def folders(self) -> Folders:
        return self._d.folders

    @property
    def worker_init(self) -> Callable[[], None] | None:
        """What a process the dashboard spawns runs first (the daemon's logging setup)."""
        return self._d.worker_init

    @property
    def events(self) -> EventBus:
        return self._d.events

    @property
    def journal_path(self) -> Path:
        return self._d.folders.journal

    def read_journal(self) -> sqlite3.Connection:
        """A new read-only connection to the journal (one per thread that reads)."""
        return connect(self.journal_path, readonly=True)

    @property
    def upload_dir(self) -> Path:
        d = self._d.folders.uploads
        d.mkdir(exist_ok=True)
        return d

    # -- reads -------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """What the loop published at the end of its last step (frozen: read freely)."""
        return self._d.snapshot

    def status(self) -> dict[str, Any]:
        # the webhooks' state is their own (their senders' threads update it), not the loop's
        gate = self._d.intake.gate  # files waiting for a ready marker (daemon.markers)
        return {**self._d.snapshot.as_dict(), "notify": self._d.webhooks.view(),
                "markers": gate.view() if gate is not None else []}  # fmt: skip

    # -- actions -------------------------------------------------------------------
    def _run(self, fn: Any) -> Any:
        return self._d.call(fn).result(self._timeout)

    def requeue(self, uid: str) -> str:
        """failed/ → unprocessed/ with fresh attempts; returns its name in unprocessed/."""
        return shown(self._run(lambda: self._requeue_now(uid, "requeued")))

    def requeue_many(
        self, uids: list[str], reason: str, reprocess: bool = False
    ) -> list[tuple[str, str | None, str]]:
        """`requeue` for each of `uids`, journalled with `reason`, in chunks of
        REQUEUE_CHUNK per call on the daemon's thread (so the loop keeps running between
        them): (uid, name in unprocessed/ or None, why not) for each, in order.
        `reprocess`: processed files too go back, to run again under the config in use
        (`dashboard.reprocess`)."""
        done: list[tuple[str, str | None, str]] = []
        states = (State.PROCESSED, State.FAILED) if reprocess else (State.FAILED,)
        for i in range(0, len(uids), REQUEUE_CHUNK):
            done += self._run(lambda chunk=uids[i : i + REQUEUE_CHUNK]: [
                self._try_requeue(uid, reason, states) for uid in chunk])  # fmt: skip
        return done

    def _try_requeue(
        self, uid: str, reason: str, states: tuple[State, ...]
    ) -> tuple[str, str | None, str]:
        try:
            return uid, shown(self._requeue_now(uid, reason, states)), ""
        except ActionError as exc:  # moved or fixed by someone meanwhile: the others go on
            return uid, None, str(exc)

    def _requeue_now(
        self, uid: str, reason: str, states: tuple[State, ...] = (State.FAILED,)
    ) -> str:
        """On the daemon's thread: the file `uid` from one of `states` to unprocessed/."""
        row = self._d.journal.get(uid) if _UID.fullmatch(uid) else None
        if row is None:
            raise ActionError(f"no file with id {uid!r}", 404)
        if row.state not in states:
            which = " or ".join(s.value for s in states)
            verb = "requeued" if states == (State.FAILED,) else "reprocessed"
            raise ActionError(
                f"only {which} files can be {verb} (this one is {row.state.value})", 409
            )
        if (source := source_actions.owner(self._d.sources, row)) is not None:  # read in place
            try:
                return source_actions.requeue(self._d.sources, source, row, reason,
                                              reprocess=State.PROCESSED in states)  # fmt: skip
            except source_actions.SourceRefused as exc:
                raise ActionError(str(exc), exc.status) from None
        ref = FileRef(uid, row.rel, row.state, 0, row.original, row.size or 0,
                      row.inode or 0)  # fmt: skip
        where = f"{row.state.value}/"
        try:
            path = ref.path(self._d.folders)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise ActionError(f"{shown(row.rel)!r} in {where} is not a regular file", 409)
            transition(self._d.folders, self._d.journal, ref, State.QUEUED, reason=reason)
        except FileNotFoundError:
            raise ActionError(f"{shown(row.rel)!r} is no longer in {where}", 409) from None
        return ref.rel

    def failed_route(self, rel: str) -> str | None:
        """The start tag the active pipeline's routes give `rel` in failed/ (by its name
        and first bytes), or None: no route matches, or it cannot be read. Any thread."""
        routes = self._d.snapshot.pipeline.config.routes
        rel = parsed(rel)
        try:
            fd = os.open(self._d.folders.of(State.FAILED) / rel, os.O_RDONLY | os.O_NOFOLLOW
                         | os.O_NONBLOCK | os.O_CLOEXEC)  # fmt: skip
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    return None
                return file_routes.select(routes, rel, readers.Source(f).head)[0].start
        except (OSError, ProcessorError):
            return None

    def cancel(self, rel: str) -> str:
        """A file still waiting in unprocessed/ → failed/ with the reason "cancelled"."""

        def act() -> str:
            try:
                ref = self._d.claimer.reject_queued(parsed(rel), "cancelled")
            except ValueError as exc:
                raise ActionError(f"cannot cancel: {exc}", 400) from None
            except FileNotFoundError:
                raise ActionError(f"{rel!r} is not waiting in unprocessed/", 404) from None
            return shown(ref.rel)

        return self._run(act)

    # -- sources (daemon.sources) ---------------------------------------------------------
    def sources(self) -> dict[str, Any]:
        """Every source with its counts, rates and last errors, and the jobs, newest first."""
        snap = self._d.snapshot
        return {"sources": [s.as_dict() for s in snap.sources], "jobs": list(snap.source_jobs)}

    def source_job(self, job_id: int) -> dict[str, Any] | None:
        jobs = self._d.snapshot.source_jobs
        found = next((j for j in jobs if j["id"] == job_id), None)
        if found is None and (not jobs or job_id > jobs[0]["id"]):
            # newer than the snapshot (published at most every commit): a job just started
            # is asked of the loop, so its POST's answer is never followed by a 404
            found = self._run(lambda: (j := self._d.sources.jobs.by_id.get(job_id)) and j.as_dict())
        return found

    def start_source_job(
        self, *, source: str | None, path: str | None, glob: str | None, name: str | None
    ) -> tuple[dict[str, Any], bool]:
        """A job walking a source (by name) or a folder under --source-roots now; (the job,
        whether it is new: a source with a job running answers with that one)."""
        roots = self.settings.source_roots
        return self._source_action(lambda: source_actions.start_job(
            self._d.sources, roots, source=source, path=path, glob=glob, name=name))  # fmt: skip

    def cancel_source_job(self, job_id: int) -> dict[str, Any]:
        return self._source_action(lambda: source_actions.cancel_job(self._d.sources, job_id))

    def _source_action(self, fn: Callable[[], Any]) -> Any:
        def act() -> Any:
            try:
                return fn()
            except source_actions.SourceRefused as exc:
                raise ActionError(str(exc), exc.status) from None

        return self._run(act)

    def upload_name(self, filename: str) -> str:
        """The name an upload called `filename` gets in unprocessed/ (sanitised, short
        enough for its results); ActionError(400) for one that would never be processed."""
        claimer = self._d.claimer
        name = safe_upload_name(filename, claimer.name_max - claimer.name_room)
        if why := self._d.intake.ignored(name):
            raise ActionError(f"{name!r} would never be processed: {why}; rename it", 400)
        return name

    def accept_upload(self, tmp: Path, filename: str) -> str:
        """Rename a complete upload from `upload_dir` into unprocessed/ (one atomic rename,
        a `~N` suffix if the name is taken); returns the name it got."""
        name = self.upload_name(filename)
        if tmp.parent != self.upload_dir:
            raise ActionError("uploads must be staged in the upload directory", 400)
        return self._run(lambda: admit(self._d.folders, tmp, name))
