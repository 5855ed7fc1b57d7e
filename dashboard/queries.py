"""Every journal query the dashboard makes: bounded, indexed, one read-only connection per
thread.

Lists are newest first by `(updated, id)` — the `files_updated` and `files_state_updated`
indexes hold rowid, so SQLite walks them in order and stops at LIMIT. Pages are keyset
cursors (`updated:id`), so page 2,000 of 100,000 files costs what page 1 costs; no request
counts the whole table (per-state totals come from `state_counts`, refreshed in the
background).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from daemon.states import State

if TYPE_CHECKING:
    from daemon.control import DaemonAPI

MAX_LIMIT = 500
_MAX_ROWID = 2**63 - 1  # SQLite integers are 64-bit
STATES = tuple(s.value for s in State)  # the journal's: the four folders, and missing
_FILE_COLUMNS = (
    "id, uid, rel, original, state, size, attempts, created, updated, started, finished,"
    " duration, lines_in, lines_out, error, outputs, sha256, route, config_sha256"
)


class JournalReader:
    """Read-only journal connections, one per thread (sqlite3 objects are not shared)."""

    def __init__(self, api: DaemonAPI) -> None:
        self._api = api
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def conn(self) -> sqlite3.Connection:
        """This thread's connection, to the journal file the daemon writes now (it starts a
        new one if the file is deleted: an old connection would read the deleted one)."""
        generation = self._api.snapshot.journal_generation
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.generation != generation:
            with self._lock:
                self._all.remove(conn)
            conn.close()
            conn = None
        if conn is None:
            conn = self._api.read_journal()
            conn.row_factory = sqlite3.Row
            self._local.conn, self._local.generation = conn, generation
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first list: the (updated, id) of a row."""

    updated: float
    id: int

    def __str__(self) -> str:
        return f"{self.updated!r}:{self.id}"

    @classmethod
    def parse(cls, raw: str | None) -> Cursor | None:
        """The cursor `str()` wrote, or ValueError: a number SQLite cannot bind (an id past
        64 bits, NaN) must be a 400, not an OverflowError from the query."""
        if not raw:
            return None
        try:
            updated, row_id = raw.split(":", 1)
            cursor = cls(float(updated), int(row_id))
        except ValueError:
            cursor = None
        if cursor is None or not math.isfinite(cursor.updated) or abs(cursor.id) > _MAX_ROWID:
            raise ValueError(f"bad cursor {raw!r} (expected UPDATED:ID)")
        return cursor


def file_row(row: sqlite3.Row) -> dict[str, Any]:
    """A journal row as plain JSON-able values (error and outputs decoded)."""
    d = dict(row)
    d.pop("id", None)
    d["error"] = orjson.loads(d["error"]) if d.get("error") else None
    d["outputs"] = orjson.loads(d["outputs"]) if d.get("outputs") else []
    return d


def config_glob(digest: str) -> str:
    """A GLOB for the config digests starting with `digest` (hex: ValueError if not)."""
    if not 4 <= len(digest) <= 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"config: expected a sha256 or its first 4+ hex digits, got {digest!r}")
    return digest + ("*" if len(digest) < 64 else "")


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _in_range(where: list[str], args: list[Any], since: float | None, until: float | None) -> None:
    """Conditions for rows last changed from `since` until `until` (inclusive; either open)."""
    if since is not None:
        where.append("updated >= ?")
        args.append(since)
    if until is not None:
        where.append("updated <= ?")
        args.append(until)


def list_files(
    conn: sqlite3.Connection,
    *,
    state: str | None = None,
    q: str | None = None,
    limit: int = 50,
    before: Cursor | None = None,
    after: Cursor | None = None,
    since: float | None = None,
    until: float | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """One page of files, newest first, with cursors for the older and newer pages; with
    `since`/`until`, only those whose last change was in that time range (inclusive);
    `config`: only the files whose last run had that config, by its digest or a prefix."""
    limit = max(1, min(limit, MAX_LIMIT))
    where: list[str] = []
    args: list[Any] = []
    if state:
        where.append("state = ?")
        args.append(state)
    _in_range(where, args, since, until)
    if config:
        where.append("config_sha256 GLOB ?")
        args.append(config_glob(config))
    if q:
        where.append("(rel LIKE ? ESCAPE '\\' OR original LIKE ? ESCAPE '\\')")
        args += [_like(q), _like(q)]
    order = "DESC"
    if after is not None:
        where.append("(updated, id) > (?, ?)")
        args += [after.updated, after.id]
        order = "ASC"
    elif before is not None:
        where.append("(updated, id) < (?, ?)")
        args += [before.updated, before.id]
    sql = (
        f"SELECT {_FILE_COLUMNS} FROM files"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY updated {order}, id {order} LIMIT ?"
    )
    rows = conn.execute(sql, [*args, limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    if order == "ASC":
        rows.reverse()
    first = Cursor(rows[0]["updated"], rows[0]["id"]) if rows else None
    last = Cursor(rows[-1]["updated"], rows[-1]["id"]) if rows else None
    if order == "ASC":  # came from a newer page: there are older rows; newer only if `more`
        has_newer, has_older = more, True
    else:
        has_newer, has_older = before is not None, more
    return {
        "files": [file_row(r) for r in rows],
        "limit": limit,
        "newer": str(first) if has_newer and first else None,
        "older": str(last) if has_older and last else None,
    }


def get_file(conn: sqlite3.Connection, uid: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE uid = ?", (uid,)).fetchone()
    if row is None:
        return None
    d = file_row(row)
    d["timeline"] = [
        dict(t)
        for t in conn.execute(
            "SELECT ts, from_state, to_state, attempt, reason, config_sha256 FROM transitions"
            " WHERE file_id = ? ORDER BY ts, id LIMIT 1000",
            (row["id"],),
        )
    ]
    return d


def find_uid(conn: sqlite3.Connection, state: str, rel: str) -> str | None:
    row = conn.execute(
        "SELECT uid FROM files WHERE rel = ? AND state = ? ORDER BY id DESC LIMIT 1",
        (rel, state),
    ).fetchone()
    return row["uid"] if row else None


def recent_failures(
    conn: sqlite3.Connection, limit: int = 50, before: Cursor | None = None
) -> dict[str, Any]:
    return list_files(conn, state=State.FAILED, limit=limit, before=before)


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for state, n in conn.execute("SELECT state, COUNT(*) FROM files GROUP BY state"):
        counts[state] = n
    return counts


def recent_processed(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_FILE_COLUMNS} FROM files WHERE state = ? ORDER BY updated DESC, id DESC LIMIT ?",
        (State.PROCESSED.value, limit),
    ).fetchall()
    return [file_row(r) for r in rows]


def history(conn: sqlite3.Connection, since: float) -> list[tuple[str, float, float | None]]:
    """(state, updated, duration) of files that finished since `since` (chart seed)."""
    return conn.execute(
        "SELECT state, updated, duration FROM files"
        " WHERE state IN (?, ?) AND updated >= ?"
        " ORDER BY updated LIMIT 200000",
        (State.PROCESSED.value, State.FAILED.value, since),
    ).fetchall()


def failed_matching(
    conn: sqlite3.Connection,
    *,
    error_type: str | None,
    name: str | None,
    since: float | None,
    until: float | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Files in failed/ by error type, a GLOB on their name and when they failed (each
    filter optional), oldest first, at most `limit`: the candidates of a bulk requeue."""
    where: list[str] = ["state = ?"]
    args: list[Any] = [State.FAILED.value]
    if error_type:
        where.append("json_extract(error, '$.type') = ?")
        args.append(error_type)
    if name:
        where.append("rel GLOB ?")
        args.append(name)
    _in_range(where, args, since, until)
    rows = conn.execute(
        f"SELECT uid, rel, updated, json_extract(error, '$.type') AS type FROM files"
        f" WHERE {' AND '.join(where)} ORDER BY updated, id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def failed_error_types(conn: sqlite3.Connection) -> dict[str, int]:
    """How many files in failed/ have each error type, most first."""
    rows = conn.execute(
        "SELECT json_extract(error, '$.type') AS type, COUNT(*) AS n FROM files"
        " WHERE state = ? AND error IS NOT NULL GROUP BY type ORDER BY n DESC, type",
        (State.FAILED.value,),
    ).fetchall()
    return {r["type"]: r["n"] for r in rows if r["type"]}


FINISHED = (State.PROCESSED.value, State.FAILED.value)


def finished_routes(conn: sqlite3.Connection, state: str) -> list[str | None]:
    """The routes files in `state` took (None: no route), by one index seek per route
    (the `files_state_route` index), however many files there are."""
    routes: list[str | None] = []
    row = conn.execute(
        "SELECT route FROM files WHERE state = ? ORDER BY state, route LIMIT 1", (state,)
    ).fetchone()
    if row is None:
        return routes
    current = row[0]
    if current is None:
        routes.append(None)
        current = conn.execute(
            "SELECT MIN(route) FROM files WHERE state = ? AND route IS NOT NULL", (state,)
        ).fetchone()[0]
    while current is not None:
        routes.append(current)
        current = conn.execute(
            "SELECT MIN(route) FROM files WHERE state = ? AND route > ?", (state, current)
        ).fetchone()[0]
    return routes


def finished_count(
    conn: sqlite3.Connection, state: str, route: str | None, since: float, until: float
) -> int:
    """Files in `state` by `route` whose last move was in [since, until): a range of the
    `files_state_route` index, counted without reading a row."""
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM files WHERE state = ? AND route IS ? AND updated >= ?"
            " AND updated < ?",
            (state, route, since, until),
        ).fetchone()[0]
    )
