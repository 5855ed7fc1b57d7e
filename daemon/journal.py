"""The journal: SQLite (WAL) history of every file and every transition.

It is derived data. The folders are the truth: the journal is reconciled with them at
start, a failing journal (disk full, deleted) makes /health unhealthy but never stops a
file, and deleting it loses history, never files. Writes are batched: the main loop calls
`flush()` once per iteration, so a burst costs one commit per batch, not per file.

Names are stored as `formats.names.shown()` gives them (SQLite's text is UTF-8; a name
need not be), so the dashboard reads them as it shows them; `Row`s carry the real names.
Its tables, and the columns added since the first version, are `daemon.schema`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
import structlog

from daemon.schema import open_journal
from daemon.states import FileRef, State
from formats.names import as_text, parsed, shown, texts

if TYPE_CHECKING:
    from daemon.summary import Summary

log = structlog.get_logger(__name__)

_RESULT_SETS = (
    ", sha256 = ?, size = COALESCE(?, size), finished = ?, duration = ?, lines_in = ?,"
    " lines_out = ?, error = ?, outputs = ?, route = ?, config_sha256 = ?"
)


def _result_args(summary: Summary) -> list[Any]:
    err = summary.error
    return [
        summary.sha256,
        summary.size,
        summary.finished_ts,
        summary.duration_s,
        summary.counts.get("lines_in"),
        summary.counts.get("lines_out"),
        orjson.dumps(texts(err)).decode() if err else None,
        orjson.dumps([shown(f) for f in summary.output_files or ()]).decode(),
        summary.counts.get("start_tag"),
        _config_sha256(summary),
    ]


def _config_sha256(summary: Summary) -> str | None:
    """The digest of the config a summary names (`daemon.provenance`), if it names one."""
    prov = summary.provenance
    config = prov.get("config") if prov is not None else None
    value = config.get("sha256") if isinstance(config, dict) else None
    return value if isinstance(value, str) else None


class Row(NamedTuple):
    """One file's journal row, as far as the daemon needs it."""

    uid: str
    rel: str
    state: State
    attempts: int
    original: str
    inode: int | None
    size: int | None
    started: float | None = None  # wall clock: when its last attempt was handed out
    updated: float | None = None  # wall clock: its last change of state (or attempt)


_ROW_COLUMNS = "uid, rel, state, attempts, original, inode, size, started, updated"


def _row(values: tuple[Any, ...]) -> Row:
    uid, rel, state, attempts, original, inode, size, started, updated = values
    return Row(uid, parsed(rel), State(state), attempts, parsed(original), inode, size,
               started, updated)  # fmt: skip


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.healthy = True
        self.last_error: str | None = None
        self._ids: dict[str, int] = {}  # uid -> row id, for the files alive in the queue
        self.generation = 0  # bumped when the file is replaced: readers must reconnect
        self.fresh = not path.exists()  # a new journal: its history is rebuilt from results/
        try:
            self._conn = open_journal(path)
        except sqlite3.DatabaseError as exc:  # corrupt, or not a database at all
            self.fresh = True
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            log.error("journal_corrupt", path=str(path), error=str(exc), moved_to=str(aside),
                      action="starting a new journal; the folders are the truth")  # fmt: skip
            for suffix in ("", "-wal", "-shm"):
                src = path.with_name(path.name + suffix)
                if src.exists():
                    src.rename(aside.with_name(aside.name + suffix))
            self._conn = open_journal(path)
        self._ino = os.stat(path).st_ino
        # Names of rows waiting in unprocessed/ (returned at shutdown, requeued): a claim
        # looks its file up only if its name is here, not with a query per file.
        self._queued = {parsed(r[0]) for r in self._conn.execute(
            "SELECT rel FROM files WHERE state = ?", (State.QUEUED.value,))}  # fmt: skip

    def replaced(self) -> bool:
        """Whether the journal's file was deleted (or replaced) under the open connection,
        which would go on writing to a file nobody can read."""
        try:
            return os.stat(self.path).st_ino != self._ino
        except OSError:
            return True

    def reopen(self) -> None:
        """Start a new journal file at `path` (the open one was deleted); `fresh` again."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._conn = open_journal(self.path)
        self._ino = os.stat(self.path).st_ino
        self._ids.clear()
        self._queued.clear()
        self.fresh = True
        self.generation += 1
        log.error("journal_replaced", path=str(self.path),
                  action="new journal; history rebuilt from the folders and summaries")  # fmt: skip

    def restore(self, ref: FileRef, summary: Summary | None, when: float) -> None:
        """A row for a file found in a folder with no row (the journal was lost), its
        result columns from its summary when it has one."""
        with self._guard("restore"):
            self._conn.execute(
                "INSERT OR IGNORE INTO files (uid, rel, original, state, inode, size, attempts,"
                " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ref.uid, shown(ref.rel), shown(ref.original), ref.state.value, ref.inode,
                 ref.size, ref.attempt, when, when),
            )  # fmt: skip
            if summary is not None:
                self._conn.execute(
                    f"UPDATE files SET updated = ?{_RESULT_SETS} WHERE uid = ?",
                    (when, *_result_args(summary), ref.uid),
                )

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if self.healthy:
                log.error("journal_error", action=what, error=str(exc))
            self.healthy = False
            self.last_error = f"{what}: {exc}"

    def flush(self) -> None:
        with self._guard("commit"):
            self._conn.commit()
            if not self.healthy:
                log.info("journal_recovered")
            self.healthy, self.last_error = True, None

    def close(self) -> None:
        self.flush()
        with self._guard("close"):
            self._conn.close()

    def _id(self, uid: str) -> int | None:
        row_id = self._ids.get(uid)
        if row_id is None:
            row = self._conn.execute("SELECT id FROM files WHERE uid = ?", (uid,)).fetchone()
            if row is None:
                return None
            row_id = self._ids[uid] = row[0]
        return row_id

    def add(self, ref: FileRef) -> None:
        now = time.time()
        with self._guard("add"):
            cur = self._conn.execute(
                "INSERT INTO files (uid, rel, original, state, inode, size, attempts, created,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ref.uid,
                    shown(ref.rel),
                    shown(ref.original),
                    ref.state.value,
                    ref.inode,
                    ref.size,
                    ref.attempt,
                    now,
                    now,
                ),
            )
            if cur.lastrowid is not None:
                self._ids[ref.uid] = cur.lastrowid

    def transition(
        self,
        ref: FileRef,
        old: State | None,
        old_rel: str | None = None,
        reason: str | None = None,
        summary: Summary | None = None,
    ) -> None:
        """Record `ref`'s move from `old` (one UPDATE + one timeline row). A claim also
        stamps `started`; `summary` (an attempt's outcome) fills the result columns."""
        now = time.time()
        sets = "state = ?, rel = ?, attempts = ?, updated = ?"
        args: list[Any] = [ref.state.value, shown(ref.rel), ref.attempt, now]
        if ref.state is State.CLAIMED:
            sets += ", started = ?"
            args.append(now)
        if summary is not None:
            sets += _RESULT_SETS
            args += _result_args(summary)
        with self._guard("transition"):
            row_id = self._id(ref.uid)
            if row_id is None:
                self.add(ref)
                row_id = self._ids[ref.uid]
            self._conn.execute(f"UPDATE files SET {sets} WHERE id = ?", (*args, row_id))
            self._conn.execute(
                "INSERT INTO transitions (file_id, ts, from_state, to_state, attempt, reason,"
                " config_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row_id,
                    now,
                    old.value if old else None,
                    ref.state.value,
                    ref.attempt,
                    as_text(reason) if reason else reason,
                    _config_sha256(summary) if summary is not None else None,
                ),
            )
        if old is State.QUEUED:
            self._queued.discard(old_rel or ref.rel)
        if ref.state is State.QUEUED:
            self._queued.add(ref.rel)
        if ref.state in (State.PROCESSED, State.FAILED):
            self._ids.pop(ref.uid, None)

    def execute(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> list[Any] | None:
        """Run `sql` on the loop's connection, in the transaction the next `flush` commits
        with the moves journalled meanwhile (the outbox's rows: `daemon.outbox`); its rows,
        or None if the journal failed."""
        with self._guard(what):
            return self._conn.execute(sql, args).fetchall()
        return None

    def started(self, ref: FileRef) -> None:
        with self._guard("started"):
            self._conn.execute(
                "UPDATE files SET attempts = ?, started = ?, updated = ? WHERE uid = ?",
                (ref.attempt, time.time(), time.time(), ref.uid),
            )

    def finished(self, uid: str, summary: Summary) -> None:
        """Record an attempt's outcome without a transition (the file vanished)."""
        with self._guard("finished"):
            self._conn.execute(
                f"UPDATE files SET updated = ?{_RESULT_SETS} WHERE uid = ?",
                (time.time(), *_result_args(summary), uid),
            )

    def find(self, state: State, rel: str) -> Row | None:
        """The newest row in `state` under name `rel`."""
        if state is State.QUEUED and rel not in self._queued:
            return None
        with self._guard("find"):
            row = self._conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM files WHERE state = ? AND rel = ?"
                " ORDER BY id DESC LIMIT 1",
                (state.value, shown(rel)),
            ).fetchone()
            return _row(row) if row else None
        return None

    def get(self, uid: str) -> Row | None:
        """The row of file `uid`."""
        with self._guard("get"):
            row = self._conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM files WHERE uid = ?", (uid,)
            ).fetchone()
            return _row(row) if row else None
        return None

    def processed_of_size(self, size: int) -> list[tuple[str, str, str, str | None]]:
        """(sha256, uid, rel, outputs JSON) of the first processed input of each content
        `size` bytes long (the copies that came after it were processed too)."""
        with self._guard("processed_of_size"):
            rows = self._conn.execute(
                "SELECT sha256, uid, rel, outputs, MIN(finished) FROM files"
                " WHERE state = 'processed' AND size = ? AND sha256 IS NOT NULL GROUP BY sha256",
                (size,),
            )
            return [(sha, uid, parsed(rel), outputs) for sha, uid, rel, outputs, _ in rows]
        return []

    def in_state(self, state: State) -> list[Row]:
        """Every row the journal believes is in `state`."""
        with self._guard("in_state"):
            rows = self._conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM files WHERE state = ?", (state.value,)
            ).fetchall()
            return [_row(r) for r in rows]
        return []

    def set_state(self, uid: str, state: State, reason: str) -> None:
        """Correct a row to what the folders say (reconciliation), with a timeline entry."""
        now = time.time()
        with self._guard("set_state"):
            row = self._conn.execute(
                "SELECT id, state, attempts, rel FROM files WHERE uid = ?", (uid,)
            ).fetchone()
            if row is None:
                return
            row_id, old_state, attempts, rel = row
            if state is State.QUEUED:
                self._queued.add(parsed(rel))
            self._conn.execute(
                "UPDATE files SET state = ?, updated = ? WHERE id = ?", (state.value, now, row_id)
            )
            self._conn.execute(
                "INSERT INTO transitions (file_id, ts, from_state, to_state, attempt, reason)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (row_id, now, old_state, state.value, attempts, reason),
            )
