"""What the dashboard may see and do: a snapshot of the daemon, and three actions.

Reads (`status()`) are safe from any thread: they copy plain values the loop updates.
Actions (`requeue`, `cancel`, `accept_upload`) run on the daemon's loop thread through
`Daemon.call`, so a file's state is only ever changed by the thread that owns it. The
journal is read by the dashboard with its own read-only connection (`journal.connect`).
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import DaemonError
from daemon.journal import connect
from daemon.states import FileRef, State, free_name, transition

if TYPE_CHECKING:
    import sqlite3

    from daemon.core import Daemon

VERSION = "0.1.0"
UPLOAD_DIRNAME = ".folderd-upload"  # hidden, inside unprocessed/: same filesystem, never claimed
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


class ActionError(DaemonError):
    """An action the dashboard asked for cannot be done; `status` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def safe_upload_name(name: str) -> str:
    """A file name safe to create in unprocessed/: no path, no control characters, not
    hidden, not empty. Raises ActionError(400) when nothing usable is left."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if not name or name in {".", ".."}:
        raise ActionError("the file name is empty once unsafe characters are removed", 400)
    return name[:255]


class DaemonAPI:
    def __init__(self, daemon: Daemon, action_timeout: float = 10.0) -> None:
        self._d = daemon
        self._timeout = action_timeout

    @property
    def settings(self) -> Any:
        return self._d.settings

    @property
    def folders(self) -> Any:
        return self._d.folders

    @property
    def events(self) -> Any:
        return self._d.events

    @property
    def journal_path(self) -> Path:
        return self._d.folders.meta / "journal.sqlite3"

    def read_journal(self) -> sqlite3.Connection:
        """A new read-only connection to the journal (one per thread that reads)."""
        return connect(self.journal_path, readonly=True)

    @property
    def upload_dir(self) -> Path:
        d = self._d.folders.of(State.QUEUED) / UPLOAD_DIRNAME
        d.mkdir(exist_ok=True)
        return d

    # -- reads -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        d = self._d
        now = time.monotonic()
        watcher = d.watcher
        in_flight = []
        for slot in d.pool.busy():
            job = slot.job
            if job is None:
                continue
            ref = d.in_flight(job.uid)
            in_flight.append({
                "uid": job.uid, "path": job.rel, "attempt": job.attempt,
                "worker_pid": slot.pid, "running_s": round(now - slot.started, 3),
                "bytes_read": slot.bytes_read, "size": ref.size if ref else None,
            })  # fmt: skip
        journal = d.journal
        return {
            "version": VERSION,
            "pid": os.getpid(),
            "ready": d.ready,
            "started_at": d.started_at,
            "uptime_s": round(time.time() - d.started_at, 3),
            "counts": d.counts(),
            "oldest_queued_age_s": round(d.oldest_queued_age(), 3),
            "loop": {"last_tick_age_s": round(now - d.last_tick, 3)},
            "watcher": {
                "alive": watcher.alive() if watcher else None,
                "kind": watcher.kind if watcher else None,
                "restarts": watcher.restarts if watcher else 0,
                "overflows": watcher.overflows if watcher else 0,
            },
            "workers": {
                "size": len(d.pool.slots),
                "alive": d.pool.alive(),
                "busy": len(in_flight),
                "deaths": d.pool.deaths,
                "pids": [s.pid for s in d.pool.slots],
            },
            "journal": {
                "healthy": journal.healthy if journal else False,
                "error": journal.last_error if journal else "not open",
            },
            "in_flight": in_flight,
            "watch_dir": str(d.folders.root),
            "results_dir": str(d.folders.results),
            "pipeline": d.pipeline_config,
        }

    # -- actions -------------------------------------------------------------------
    def _run(self, fn: Any) -> Any:
        return self._d.call(fn).result(self._timeout)

    def requeue(self, uid: str) -> str:
        """failed/ → unprocessed/ with fresh attempts; returns its name in unprocessed/."""

        def act() -> str:
            with self.read_journal() as conn:
                row = conn.execute(
                    "SELECT rel, state, original, inode, size FROM files WHERE uid = ?", (uid,)
                ).fetchone()
            if row is None:
                raise ActionError(f"no file with id {uid}", 404)
            if row[1] != State.FAILED.value:
                raise ActionError(f"only failed files can be requeued (this one is {row[1]})", 409)
            ref = FileRef(uid, row[0], State.FAILED, 0, row[2], row[4] or 0, row[3] or 0)
            try:
                transition(self._d.folders, self._d.journal, ref, State.QUEUED, reason="requeued")
            except FileNotFoundError:
                raise ActionError(f"{row[0]} is no longer in failed/", 409) from None
            return ref.rel

        return self._run(act)

    def cancel(self, rel: str) -> str:
        """A file still waiting in unprocessed/ → failed/ with the reason "cancelled"."""

        def act() -> str:
            if rel.startswith("/") or ".." in rel.split("/"):
                raise ActionError("invalid path", 400)
            try:
                ref = self._d.reject_queued(rel, "cancelled")
            except FileNotFoundError:
                raise ActionError(f"{rel} is not waiting in unprocessed/", 404) from None
            return ref.rel

        return self._run(act)

    def accept_upload(self, tmp: Path, filename: str) -> str:
        """Rename a complete upload from `upload_dir` into unprocessed/ (one atomic rename,
        a `~N` suffix if the name is taken); returns the name it got."""
        name = safe_upload_name(filename)
        if tmp.parent != self.upload_dir:
            raise ActionError("uploads must be staged in the upload directory", 400)

        def act() -> str:
            final = free_name(self._d.folders, State.QUEUED, name, uid="")
            os.rename(tmp, self._d.folders.of(State.QUEUED) / final)
            return final

        return self._run(act)
