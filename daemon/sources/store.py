"""The sources' journal: SQLite (WAL) rows of every file of every source, and the jobs.

The folders of a source cannot be the queue (folderd must not move them), so this file is:
each file's row holds the version last seen (size, mtime_ns, ctime_ns, inode, and its
sha256 for a hashed source), its state, and the version processed last. It lives beside
the queue's journal (`.folderd/sources.sqlite3`), written by the loop's thread only (one
connection; committed with the journal, `flush()`); the scanner thread and the dashboard
read it with connections of their own. Paths are stored as their bytes (a BLOB): a name
need not be UTF-8, and a BLOB compares as the bytes do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog

from daemon.schema import connect
from daemon.settle import Signature
from formats.names import parsed, shown

log = structlog.get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    source TEXT NOT NULL,
    path BLOB NOT NULL,             -- relative to the source's folder, its bytes
    dir BLOB NOT NULL,              -- its folder's path (b'' at the top): a walk reads a
                                    -- folder's rows at once
    state TEXT NOT NULL,            -- an Entry state (pending, running, done…)
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,         -- the version last seen
    sha256 TEXT,                    -- its content's digest (a hashed source), if known
    due REAL NOT NULL DEFAULT 0,    -- pending: claimed once this wall-clock time has passed
    version INTEGER NOT NULL DEFAULT 0,  -- versions processed (done or failed) so far
    done_sig TEXT,                  -- the version processed last: "size:mtime:ctime:inode"
    done_sha256 TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,  -- of the version pending, transient errors
    job INTEGER,                    -- the job counting this file, if one does
    error TEXT,                     -- why the last version failed, or its after-action did
    updated REAL NOT NULL,
    PRIMARY KEY (source, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_due ON entries (due) WHERE state = 'pending';
DROP INDEX IF EXISTS entries_dir;  -- (source, dir) alone: each row then read from the table
CREATE INDEX IF NOT EXISTS entries_walk ON entries (source, dir, state, size, mtime_ns,
                                                   ctime_ns, inode);  -- covers a walk's read
CREATE INDEX IF NOT EXISTS entries_job ON entries (job) WHERE job IS NOT NULL;
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    glob TEXT,
    state TEXT NOT NULL,            -- scanning, running, done, cancelled
    created REAL NOT NULL, finished REAL,
    total_files INTEGER NOT NULL DEFAULT 0, total_bytes INTEGER NOT NULL DEFAULT 0,
    done_files INTEGER NOT NULL DEFAULT 0, done_bytes INTEGER NOT NULL DEFAULT 0,
    failed_files INTEGER NOT NULL DEFAULT 0, failed_bytes INTEGER NOT NULL DEFAULT 0,
    gone_files INTEGER NOT NULL DEFAULT 0,
    error TEXT                      -- its walk failed: why
);
CREATE TABLE IF NOT EXISTS adhoc (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,      -- a folder jobs were asked for, under --source-roots
                                    -- (as formats.names.shown() writes it)
    created REAL NOT NULL
);
"""


class EntryState(StrEnum):
    PENDING = "pending"  # a version seen and not processed yet: waits to settle, then a worker
    RUNNING = "running"  # a worker has it (a crash leaves it so: pending again at start)
    DONE = "done"  # the version seen was processed; its results and deliveries are committed
    FAILED = "failed"  # it failed for good: stays so until the file changes or is requeued
    DELETED = "deleted"  # gone from the source; its results are kept
    CANCELLED = "cancelled"  # its job was cancelled before it ran (an ad-hoc source's)


def sig_text(sig: Signature) -> str:
    return ":".join(map(str, sig))


@dataclass(frozen=True, slots=True)
class Entry:
    """One file's row."""

    source: str
    rel: str  # surrogateescape str
    state: EntryState
    sig: Signature
    sha256: str | None
    due: float
    version: int
    done_sig: str | None
    done_sha256: str | None
    attempts: int
    job: int | None
    error: str | None

    @property
    def size(self) -> int:
        return self.sig[0]


_COLUMNS = ("source, path, state, size, mtime_ns, ctime_ns, inode, sha256, due, version, "
            "done_sig, done_sha256, attempts, job, error")  # fmt: skip


def _entry(row: tuple[Any, ...]) -> Entry:
    source, path, state, size, mtime, ctime, ino, sha, due, version, dsig, dsha, att, job, err = row
    return Entry(source, os.fsdecode(path), EntryState(state), (size, mtime, ctime, ino), sha,
                 due, version, dsig, dsha, att, job, err)  # fmt: skip


def path_key(rel: str) -> bytes:
    return os.fsencode(rel)


class Store:
    """The loop's connection (the only writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.healthy = True
        self.last_error: str | None = None
        self._conn = connect(path)
        self._conn.executescript(SCHEMA)
        self._conn.commit()

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if self.healthy:
                log.error("sources_journal_error", action=what, error=str(exc))
            self.healthy, self.last_error = False, f"{what}: {exc}"

    def flush(self) -> None:
        with self._guard("commit"):
            self._conn.commit()
            self.healthy, self.last_error = True, None

    def close(self) -> None:
        self.flush()
        with self._guard("close"):
            self._conn.close()

    # -- entries ------------------------------------------------------------------------
    def get(self, source: str, rel: str) -> Entry | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM entries WHERE source = ? AND path = ?",
            (source, path_key(rel)),
        ).fetchone()
        return _entry(row) if row else None

    def put(self, e: Entry) -> None:
        """Insert or replace the row of `e`."""
        with self._guard("put"):
            self._conn.execute(
                f"INSERT OR REPLACE INTO entries ({_COLUMNS}, dir, updated) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (e.source, path_key(e.rel), e.state.value, *e.sig, e.sha256, e.due, e.version,
                 e.done_sig, e.done_sha256, e.attempts, e.job, e.error,
                 path_key(e.rel.rpartition("/")[0]), time.time()),
            )  # fmt: skip

    def due(self, now: float, limit: int, sources: list[str]) -> list[Entry]:
        """Pending rows of `sources` whose settle window (or retry delay) has passed,
        oldest first."""
        if not sources:
            return []
        marks = ", ".join("?" * len(sources))
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM entries WHERE state = 'pending' AND due <= ? "
            f"AND source IN ({marks}) ORDER BY due LIMIT ?",
            (now, *sources, limit),
        ).fetchall()
        return [_entry(r) for r in rows]

    def next_due(self, sources: list[str]) -> float | None:
        if not sources:
            return None
        marks = ", ".join("?" * len(sources))
        row = self._conn.execute(
            f"SELECT min(due) FROM entries WHERE state = 'pending' AND source IN ({marks})",
            sources,
        ).fetchone()
        return row[0] if row else None

    def recover(self) -> int:
        """Versions a dead run left running: pending again, due now (they re-run, and
        their results and deliveries replace whatever the dead run committed)."""
        cur = self._conn.execute(
            "UPDATE entries SET state = 'pending', due = 0 WHERE state = 'running'"
        )
        self._conn.commit()
        return cur.rowcount

    def counts(self) -> dict[str, dict[str, list[int]]]:
        """source -> state -> [files, bytes]: the counters a start begins from."""
        out: dict[str, dict[str, list[int]]] = {}
        rows = self._conn.execute(
            "SELECT source, state, count(*), coalesce(sum(size), 0) FROM entries "
            "GROUP BY source, state"
        )
        for source, state, n, size in rows:
            out.setdefault(source, {})[state] = [n, size]
        return out

    def job_entries(self, job: int) -> Iterator[Entry]:
        for row in self._conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE job = ?", (job,)):
            yield _entry(row)

    def drop_source(self, source: str) -> None:
        with self._guard("drop_source"):
            self._conn.execute("DELETE FROM entries WHERE source = ?", (source,))

    # -- jobs ---------------------------------------------------------------------------
    def add_job(self, source: str, glob: str | None) -> int:
        cur = self._conn.execute(
            "INSERT INTO jobs (source, glob, state, created) VALUES (?, ?, 'scanning', ?)",
            (source, glob, time.time()),
        )
        self._conn.commit()  # the id is the caller's answer: it must outlive a crash
        if cur.lastrowid is None:
            raise sqlite3.DatabaseError("no id for the new job")
        return cur.lastrowid

    def save_job(
        self,
        job: int,
        state: str,
        counts: dict[str, int],
        finished: float | None,
        error: str | None,
    ) -> None:
        with self._guard("save_job"):
            self._conn.execute(
                "UPDATE jobs SET state = ?, finished = ?, total_files = ?, total_bytes = ?, "
                "done_files = ?, done_bytes = ?, failed_files = ?, failed_bytes = ?, "
                "gone_files = ?, error = ? WHERE id = ?",
                (state, finished, counts["total_files"], counts["total_bytes"],
                 counts["done_files"], counts["done_bytes"], counts["failed_files"],
                 counts["failed_bytes"], counts["gone_files"], error, job),
            )  # fmt: skip

    def delete(self, source: str, rel: str) -> None:
        with self._guard("delete"):
            self._conn.execute(
                "DELETE FROM entries WHERE source = ? AND path = ?", (source, path_key(rel))
            )

    def jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        cur = self._conn.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def adhoc(self) -> list[tuple[str, str]]:
        rows = self._conn.execute("SELECT name, path FROM adhoc ORDER BY created")
        return [(name, parsed(path)) for name, path in rows]

    def add_adhoc(self, name: str, path: str) -> None:
        self._conn.execute(  # the folder's name as shown(): SQLite's text is UTF-8
            "INSERT OR IGNORE INTO adhoc (name, path, created) VALUES (?, ?, ?)",
            (name, shown(path), time.time()),
        )


Looked = tuple[str, Signature, str | None]  # a row as a walk compares it: state, signature, sha256
Listed = tuple[bytes, int, int, int, int]  # a file as a quick walk compares it: name, signature


class Reader:
    """A read-only connection for another thread (the scanner's)."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path, readonly=True)

    def lookup(self, source: str, rel: str) -> Looked | None:
        """(state, signature, sha256) of a file's row, or None."""
        row = self._conn.execute(
            "SELECT state, size, mtime_ns, ctime_ns, inode, sha256 FROM entries "
            "WHERE source = ? AND path = ?",
            (source, path_key(rel)),
        ).fetchone()
        if row is None:
            return None
        return row[0], (row[1], row[2], row[3], row[4]), row[5]

    def folder(self, source: str, folder: str, most: int) -> dict[str, Looked] | None:
        """name -> (state, signature, sha256) of the rows of the files directly in `folder`
        (relative; "" is the top), or None if it has more than `most`."""
        rows = self._conn.execute(
            # without statistics SQLite would take the primary key: every row of the source
            "SELECT path, state, size, mtime_ns, ctime_ns, inode, sha256 FROM entries "
            "INDEXED BY entries_walk WHERE source = ? AND dir = ? LIMIT ?",
            (source, path_key(folder), most + 1),
        ).fetchall()
        if len(rows) > most:
            return None
        return {os.fsdecode(p).rpartition("/")[2]: (st, (a, b, c, d), sha)
                for p, st, a, b, c, d, sha in rows}  # fmt: skip

    def folder_sigs(self, source: str, folder: bytes, most: int) -> set[Listed] | None:
        """(name, size, mtime_ns, ctime_ns, inode) of each row not deleted of the files
        directly in `folder` (its bytes, b"" at the top), names as bytes; None if it has
        more than `most`. Read from the index alone and made a set by SQLite's module: no
        Python code runs per row."""
        cut = len(folder) + 2 if folder else 1  # the name: the path after "folder/"
        rows = set(
            self._conn.execute(
                "SELECT substr(path, ?), size, mtime_ns, ctime_ns, inode FROM entries "
                "INDEXED BY entries_walk WHERE source = ? AND dir = ? AND state != 'deleted' "
                "LIMIT ?",
                (cut, source, folder, most + 1),
            )
        )
        return None if len(rows) > most else rows

    def live_count(self, source: str) -> int:
        """Rows of `source` not deleted (a walk that matched as many found no deletion)."""
        return self._conn.execute(
            "SELECT count(*) FROM entries WHERE source = ? AND state != 'deleted'", (source,)
        ).fetchone()[0]

    def live_paths(self, source: str, batch: int = 1000) -> Iterator[str]:
        """Every path of `source` not deleted, in pages (each its own short read, so a
        long sweep never holds the WAL back)."""
        after = b""
        while True:
            rows = self._conn.execute(
                "SELECT path FROM entries WHERE source = ? AND path > ? AND state != 'deleted' "
                "ORDER BY path LIMIT ?",
                (source, after, batch),
            ).fetchall()
            for (path,) in rows:
                yield os.fsdecode(path)
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def close(self) -> None:
        self._conn.close()
