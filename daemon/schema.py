"""The journal's SQLite schema: its tables and indexes, the columns added since the first
version (added in place when an older journal is opened), and connections with the
pragmas folderd relies on. What is written there and when is `daemon.journal`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,        -- also in the result summary: ties results to an input
    rel TEXT NOT NULL,               -- current name, relative to its state folder
    original TEXT NOT NULL,          -- name it arrived under
    state TEXT NOT NULL,
    inode INTEGER, size INTEGER, sha256 TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, updated REAL NOT NULL,
    started REAL, finished REAL, duration REAL,
    lines_in INTEGER, lines_out INTEGER,
    error TEXT,                      -- JSON: type, message, processor, tag, line
    outputs TEXT,                    -- JSON list of result paths relative to results/
    route TEXT,                      -- the start tag its last attempt took (NULL: none)
    config_sha256 TEXT               -- the config its last summary names (daemon.provenance)
);
CREATE INDEX IF NOT EXISTS files_updated ON files (updated);
CREATE INDEX IF NOT EXISTS files_state_updated ON files (state, updated);
CREATE INDEX IF NOT EXISTS files_rel ON files (rel);
CREATE INDEX IF NOT EXISTS files_processed_size ON files (size) WHERE state = 'processed';
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files (id),
    ts REAL NOT NULL,
    from_state TEXT, to_state TEXT NOT NULL,
    attempt INTEGER, reason TEXT,
    config_sha256 TEXT               -- a run's end: the config that ran it (daemon.provenance)
);
CREATE INDEX IF NOT EXISTS transitions_file ON transitions (file_id, ts);
CREATE TABLE IF NOT EXISTS configs (  -- every pipeline config the daemon has run
    sha256 TEXT PRIMARY KEY,         -- of its canonical form (config.canonical)
    path TEXT NOT NULL, version TEXT, description TEXT,
    first_loaded REAL NOT NULL, last_loaded REAL NOT NULL, loads INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS outbox (  -- notifications their receiver has not taken yet
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL, event TEXT NOT NULL,
    key TEXT NOT NULL,               -- its idempotency key
    body BLOB NOT NULL,              -- the JSON body, as it is sent
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_target ON outbox (target, id);
CREATE TABLE IF NOT EXISTS batches (  -- batch folders (daemon.batches)
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL, marker TEXT NOT NULL,
    opened REAL NOT NULL, finished REAL,
    status TEXT NOT NULL,            -- open, all_processed, some_failed
    files INTEGER NOT NULL, processed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    report TEXT,                     -- JSON, once done
    marker_id TEXT                   -- its marker file's identity until it is removed
);
CREATE INDEX IF NOT EXISTS batches_status ON batches (status, id);
CREATE TABLE IF NOT EXISTS batch_files (
    batch_id INTEGER NOT NULL REFERENCES batches (id), rel TEXT NOT NULL,
    uid TEXT, state TEXT, size INTEGER, error TEXT, duplicate INTEGER,
    PRIMARY KEY (batch_id, rel)
);
"""
# After SCHEMA, once the columns are there (an older journal gets them first): the
# dashboard's history counts finished files per state, route and time range from the
# first index alone (dashboard/history.py); reprocess and the Files page's config filter
# use the second.
INDEXES = """
CREATE INDEX IF NOT EXISTS files_state_route ON files (state, route, updated);
CREATE INDEX IF NOT EXISTS files_config ON files (config_sha256, state, updated);
"""
# Columns added since the first schema, for a journal an older version created: added in
# place when it is opened, as a user upgrading folderd has one.
_ADDED_COLUMNS = {
    "files": {"route": "TEXT", "config_sha256": "TEXT"},
    "transitions": {"config_sha256": "TEXT"},
    "batches": {"marker_id": "TEXT"},
}


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas folderd relies on (readers use readonly=True)."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def open_journal(path: Path) -> sqlite3.Connection:
    """A connection to the journal at `path`, its tables made or brought up to date."""
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
        for table, columns in _ADDED_COLUMNS.items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                    log.info("journal_migrated", path=str(path), table=table, column=column)
        conn.executescript(INDEXES)
        conn.commit()
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn
