"""Batch folders: a first-level folder of unprocessed/ claimed as one batch.

With `markers.folder` set (`_SUCCESS`), the files of a folder `unprocessed/<folder>/` wait
until its marker appears. Then the folder's files — those there at that moment, markers
and hidden files left out — become one batch, recorded in the journal (`batches`,
`batch_files`) and committed at once; they are claimed and processed as any file. When the
last of them has finished (processed, failed, or removed before it was claimed), the
batch's status — `all_processed`, or `some_failed` — is an event of its own: journalled
with its report (`daemon.reports`: processed, failed with reasons, duplicates, bytes,
seconds), published to the dashboard, and sent as `batch.done` to the `notify` targets
that want it, in the same journal commit. Only then is the marker removed. A file that
arrives in the folder after its marker opened the batch is not of it: it waits for the
next marker.

A restart continues the open batches: their members come from the journal, and a member
that finished while the journal's commit was lost is found by its journal row. A marker
a kill left behind between the commit of its batch's end and its removal is removed at the
next start, before a scan could take it for the marker of a second batch (of the files
that came after it): the commit keeps the marker file's identity (inode, ctime) until it
is removed, so a new marker of the same name, written since, is told apart, and stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from daemon.events import EventBus
from daemon.journal import Journal
from daemon.reports import RunReport
from daemon.summary import Summary, iso
from formats.names import parsed, shown

log = structlog.get_logger(__name__)

FINAL = ("processed", "failed", "gone")


@dataclass
class Batch:
    id: int
    folder: str
    marker: str  # relative to unprocessed/
    opened: float  # wall clock
    members: dict[str, str | None] = field(default_factory=dict)  # rel -> final state or None
    claimed: set[str] = field(default_factory=set)  # members claimed (no longer "gone")

    def done(self) -> bool:
        return all(state is not None for state in self.members.values())


@dataclass(frozen=True, slots=True)
class _Ended:
    """How a member ended: processed or failed (from its summary or its journal row), or
    gone (left unprocessed/ unclaimed)."""

    state: str
    uid: str | None = None
    size: int | None = None
    error: dict[str, Any] | None = None
    duplicate: bool = False


class Batches:
    def __init__(
        self,
        journal: Journal,
        queue_dir: str,
        events: EventBus,
        notify: Callable[[str, dict[str, Any], str], None] | None = None,
    ) -> None:
        self.journal = journal
        self.queue_dir = queue_dir
        self.events = events
        self.notify = notify  # (event, report, idempotency key): the outbox
        self._open: dict[str, Batch] = {}  # folder -> its open batch

    # -- the loop's calls --------------------------------------------------------------
    def load(self) -> None:
        """At start, after recovery: the open batches of the journal, their members
        reconciled with the files' rows (a member whose end was committed without its
        batch's record counts as finished)."""
        rows = self.journal.execute(
            "batches_load", "SELECT id, folder, marker, opened FROM batches WHERE status = 'open'"
        ) or []  # fmt: skip
        self._left_markers()
        for batch_id, folder, marker, opened in rows:
            b = Batch(batch_id, parsed(folder), parsed(marker), opened)
            members = self.journal.execute(
                "batches_members", "SELECT rel, state, uid FROM batch_files WHERE batch_id = ?",
                (batch_id,)) or []  # fmt: skip
            for rel, state, uid in members:
                b.members[parsed(rel)] = state
                if uid is not None:
                    b.claimed.add(parsed(rel))
            self._open[b.folder] = b
            for rel in [r for r, s in b.members.items() if s is None]:
                self._reconcile(b, rel)
            log.info("batch_resumed", batch=b.id, folder=b.folder, files=len(b.members),
                     left=sum(s is None for s in b.members.values()))  # fmt: skip
            self._check(b)

    def is_open(self, folder: str) -> bool:
        return folder in self._open

    def admits(self, folder: str, rel: str) -> bool:
        """Whether `rel` may be claimed: a member of its folder's open batch."""
        b = self._open.get(folder)
        return b is not None and rel in b.members

    def open(self, folder: str, members: list[str], marker: str) -> None:
        """The marker of `folder` appeared: its files now are one batch (committed at once,
        so no member's end is ever journalled before its batch)."""
        if folder in self._open:
            return
        if not members:
            log.warning("batch_marker_without_files", marker=marker,
                        action="left in place; no batch opened")  # fmt: skip
            return
        now = time.time()
        rows = self.journal.execute(
            "batch_open",
            "INSERT INTO batches (folder, marker, opened, status, files) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id",
            (shown(folder), shown(marker), now, "open", len(members)),
        )
        if not rows:
            log.error("batch_not_opened", folder=folder, reason="the journal failed")
            return
        b = self._open[folder] = Batch(rows[0][0], folder, marker, now, dict.fromkeys(members))
        for rel in members:
            self.journal.execute("batch_member", "INSERT INTO batch_files (batch_id, rel)"
                                 " VALUES (?, ?)", (b.id, shown(rel)))  # fmt: skip
        self.journal.flush()
        log.info("batch_opened", batch=b.id, folder=folder, files=len(members), marker=marker)
        self.events.publish("batch_opened", batch=b.id, folder=shown(folder), files=len(members))

    def claimed(self, rel: str, uid: str) -> None:
        b = self._batch_of(rel)
        if b is not None:
            b.claimed.add(rel)
            self.journal.execute("batch_claim", "UPDATE batch_files SET uid = ? WHERE batch_id = ?"
                                 " AND rel = ?", (uid, b.id, shown(rel)))  # fmt: skip

    def gone(self, rel: str) -> None:
        """A member left unprocessed/ before it was claimed (deleted, moved away)."""
        b = self._batch_of(rel)
        if b is None or rel in b.claimed:  # a claim's rename out of unprocessed/ is no loss
            return
        if not os.path.lexists(os.path.join(self.queue_dir, rel)):
            self._end(b, rel, _Ended("gone"))

    def finished(self, summary: Summary) -> None:
        """A file finished (`Outcomes.on_done`): if it is a member, its batch counts it."""
        rel = summary.original_name
        b = self._batch_of(rel)
        if b is not None:
            ended = _Ended(summary.status.value, summary.uid, summary.size, summary.error,
                           summary.duplicate_of is not None)  # fmt: skip
            self._end(b, rel, ended)

    # -- inside ------------------------------------------------------------------------
    def _batch_of(self, rel: str) -> Batch | None:
        b = self._open.get(rel.partition("/")[0])
        return b if b is not None and b.members.get(rel, "") is None else None

    def _end(self, b: Batch, rel: str, ended: _Ended) -> None:
        b.members[rel] = ended.state
        self.journal.execute(
            "batch_end",
            "UPDATE batch_files SET state = ?, uid = COALESCE(?, uid), size = ?, error = ?,"
            " duplicate = ? WHERE batch_id = ? AND rel = ?",
            (ended.state, ended.uid, ended.size,
             orjson.dumps(ended.error).decode() if ended.error else None,
             int(ended.duplicate), b.id, shown(rel)),
        )  # fmt: skip
        self._check(b)

    def _reconcile(self, b: Batch, rel: str) -> None:
        latest = ("SELECT state, uid, size, error, updated FROM files WHERE original = ?"
                  " ORDER BY id DESC LIMIT 1")  # fmt: skip
        row = (self.journal.execute("batch_reconcile", latest, (shown(rel),)) or [None])[0]
        if row is not None and row[0] in ("processed", "failed") and row[4] >= b.opened:
            error = orjson.loads(row[3]) if row[3] else None
            self._end(b, rel, _Ended(row[0], row[1], row[2], error))
        elif row is None and not os.path.lexists(os.path.join(self.queue_dir, rel)):
            self._end(b, rel, _Ended("gone"))

    def _check(self, b: Batch) -> None:
        if b.done() and b.folder in self._open:
            self._done(b)

    def _done(self, b: Batch) -> None:
        report = self._report(b)
        self.journal.execute(
            "batch_done",
            "UPDATE batches SET status = ?, finished = ?, processed = ?, failed = ?,"
            " report = ?, marker_id = ? WHERE id = ?",
            (report["status"], time.time(), report["processed"], report["failed"],
             orjson.dumps(report).decode(), self._identity(b.marker), b.id),
        )  # fmt: skip
        if self.notify is not None:
            key = hashlib.sha256(f"batch.done:{b.id}:{b.opened}".encode()).hexdigest()[:32]
            self.notify("batch.done", report, key)
        self.journal.flush()  # done, and its notification, before the marker goes
        del self._open[b.folder]
        self._remove_marker(b.id, b.marker)
        log.info("batch_done", batch=b.id, folder=b.folder, status=report["status"],
                 processed=report["processed"], failed=report["failed"],
                 seconds=report["seconds"])  # fmt: skip
        self.events.publish("batch_done", batch=b.id, folder=shown(b.folder),
                            status=report["status"])  # fmt: skip

    def _identity(self, marker: str) -> str | None:
        """The identity of the file `marker` now (None if there is none): another file of
        that name written later has another inode or ctime."""
        try:
            st = os.lstat(os.path.join(self.queue_dir, marker))
        except OSError:
            return None
        return f"{st.st_ino}:{st.st_ctime_ns}"

    def _remove_marker(self, batch_id: int, marker: str, unlink: bool = True) -> None:
        """Remove (with `unlink`) a done batch's marker; the journal then forgets its id."""
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.queue_dir, marker))
        self.journal.execute("batch_marker_removed", "UPDATE batches SET marker_id = NULL"
                             " WHERE id = ?", (batch_id,))  # fmt: skip

    def _left_markers(self) -> None:
        """At start: remove the markers of done batches a kill left behind; a new file of
        the same name, written since, stays (it opens the next batch)."""
        # marker_id: set in the commit of a batch's end, cleared once its marker is removed
        rows = self.journal.execute(
            "batch_markers_left", "SELECT id, marker, marker_id FROM batches"
            " WHERE marker_id IS NOT NULL") or []  # fmt: skip
        for batch_id, marker, marker_id in rows:
            left = self._identity(parsed(marker)) == marker_id
            if left:
                log.warning("batch_marker_left", batch=batch_id, marker=marker,
                            action="removed: its batch was done before the last stop")  # fmt: skip
            self._remove_marker(batch_id, parsed(marker), unlink=left)
        if rows:
            self.journal.flush()

    def _report(self, b: Batch) -> dict[str, Any]:
        report = RunReport(started=b.opened)
        gone = 0
        rows = self.journal.execute(
            "batch_report", "SELECT rel, uid, state, size, error, duplicate FROM batch_files"
            " WHERE batch_id = ?", (b.id,)) or []  # fmt: skip
        for rel, uid, state, size, error, duplicate in rows:
            if state == "gone":
                gone += 1
                continue
            report.count(state, uid, rel, size, orjson.loads(error) if error else None,
                         duplicate=bool(duplicate))  # fmt: skip
        status = "all_processed" if report.failed == 0 and gone == 0 else "some_failed"
        return report.as_json("batch", id=b.id, folder=shown(b.folder), status=status,
                              opened=iso(b.opened), members=len(b.members), gone=gone)  # fmt: skip
