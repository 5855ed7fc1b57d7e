"""A journal an older folderd made is upgraded in place when it is opened: the columns and
tables provenance needs are added, its rows kept, and a daemon started on it indexes the
files it processes by their config's digest."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from config.canonical import digest
from daemon.journal import Journal
from daemon.states import FileRef, State
from daemon.summary import Start
from tests.conftest import Queue, wait_until

# The schema of folderd 0.1.0 before provenance (daemon/journal.py as it was).
OLD_SCHEMA = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, rel TEXT NOT NULL,
    original TEXT NOT NULL, state TEXT NOT NULL, inode INTEGER, size INTEGER, sha256 TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL,
    started REAL, finished REAL, duration REAL, lines_in INTEGER, lines_out INTEGER,
    error TEXT, outputs TEXT
);
CREATE INDEX files_updated ON files (updated);
CREATE INDEX files_state_updated ON files (state, updated);
CREATE INDEX files_rel ON files (rel);
CREATE INDEX files_processed_size ON files (size) WHERE state = 'processed';
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files (id), ts REAL NOT NULL,
    from_state TEXT, to_state TEXT NOT NULL, attempt INTEGER, reason TEXT
);
CREATE INDEX transitions_file ON transitions (file_id, ts);
INSERT INTO files (uid, rel, original, state, size, attempts, created, updated, outputs)
VALUES ('0123456789abcdef0123456789abcdef', 'before.log', 'before.log', 'processed', 3, 1,
        1.0, 2.0, '["before.log.out"]');
INSERT INTO transitions (file_id, ts, from_state, to_state, attempt)
VALUES (1, 2.0, 'underprocess', 'processed', 1);
"""


def _old_journal(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)


def _columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def test_opened_in_place(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    _old_journal(path)
    journal = Journal(path)
    assert not journal.fresh  # its history is kept, not rebuilt
    ref = FileRef("f" * 32, "new.log", State.CLAIMED, 1, "new.log", 5, 7)
    start = Start("f" * 32, "new.log", "new.log", 1, time.time(), time.monotonic(),
                  provenance={"config": {"sha256": "ab" * 32}})  # fmt: skip
    summary = start.processed(counts={"start_tag": "log"}, output_files=())
    journal.add(ref)
    ref.state = State.PROCESSED
    journal.transition(ref, State.CLAIMED, summary=summary)
    journal.close()
    assert {"route", "config_sha256"} <= _columns(path, "files")
    assert "config_sha256" in _columns(path, "transitions")
    with sqlite3.connect(path) as conn:
        rows = dict(conn.execute("SELECT rel, config_sha256 FROM files").fetchall())
        assert rows == {"before.log": None, "new.log": "ab" * 32}
        assert conn.execute("SELECT COUNT(*) FROM transitions").fetchone()[0] == 2
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "files_config" in indexes
        assert conn.execute("SELECT COUNT(*) FROM configs").fetchone()[0] == 0
    Journal(path).close()  # a second open finds nothing to add


@pytest.mark.integration
def test_daemon_on_an_old_journal(start_daemon: Any, queue: Queue, tmp_path: Path) -> None:
    _old_journal(queue.root / ".folderd" / "journal.sqlite3")
    config = tmp_path / "pipeline.json"
    raw = {"version": 1, "routes": [{"start": "end"}]}
    config.write_text(json.dumps(raw))
    d = start_daemon("--config", str(config))
    assert d.events("journal_migrated")
    queue.drop("after.log", "one line\n")
    d.wait_event("file_processed", path="after.log")
    journal = queue.root / ".folderd" / "journal.sqlite3"

    def indexed() -> dict[str, Any] | None:
        with sqlite3.connect(journal) as conn:
            rows = dict(conn.execute("SELECT rel, config_sha256 FROM files").fetchall())
        return rows if rows.get("after.log") else None

    rows = wait_until(indexed, 10, "after.log indexed")
    assert rows == {"before.log": None, "after.log": digest(raw)}
    with sqlite3.connect(journal) as conn:
        assert conn.execute("SELECT sha256 FROM configs").fetchall() == [(digest(raw),)]
